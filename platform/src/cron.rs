//! Tencent's cron expressions, as timer triggers write them (`docs/triggers.md`, Timers).
//!
//! Seven fields separated by spaces: seconds (0–59), minutes (0–59), hours (0–23), day of the month
//! (1–31), month (1–12 or `JAN`–`DEC`), day of the week (0–6 or `SUN`–`SAT`, 0 is Sunday) and year
//! (1970–2099). Each field is `*`, a value, a range `a-b`, a step `*/n`, `a/n` or `a-b/n`, or a list of
//! those separated by commas. The older five-field form (minutes … day of the week) is read too, firing at
//! second 0 of any year. When both the day of the month and the day of the week are restricted, a day that
//! matches either one fires (as cron has always done); otherwise both must match.
//!
//! Times are evaluated in UTC+8, the time of Tencent's Chinese regions where timer triggers are scheduled.

use std::fmt;

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// A parsed cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    text: String,
    seconds: Field,
    minutes: Field,
    hours: Field,
    days: Field,
    months: Field,
    weekdays: Field,
    years: Field,
}

/// Why an expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cron expression '{expression}': {reason}")]
pub struct CronError {
    /// The expression as written.
    pub expression: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The allowed values of one field, as a bit per value from `min`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Field {
    min: u32,
    bits: Vec<bool>,
    /// Written `*` (for the day rule).
    any: bool,
}

impl Field {
    fn has(&self, v: u32) -> bool {
        v >= self.min
            && self
                .bits
                .get((v - self.min) as usize)
                .copied()
                .unwrap_or(false)
    }
}

/// One field's name, range and value names.
struct Spec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const SECONDS: Spec = Spec {
    name: "seconds",
    min: 0,
    max: 59,
    names: &[],
};
const MINUTES: Spec = Spec {
    name: "minutes",
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Spec = Spec {
    name: "hours",
    min: 0,
    max: 23,
    names: &[],
};
const DAYS: Spec = Spec {
    name: "day of the month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Spec = Spec {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
};
const WEEKDAYS: Spec = Spec {
    name: "day of the week",
    min: 0,
    max: 6,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
};
const YEARS: Spec = Spec {
    name: "year",
    min: 1970,
    max: 2099,
    names: &[],
};

/// The offset timer triggers are evaluated in: UTC+8.
pub fn offset() -> UtcOffset {
    UtcOffset::from_hms(8, 0, 0).unwrap_or(UtcOffset::UTC)
}

impl Cron {
    /// Parses a seven-field (or the older five-field) expression.
    pub fn parse(expression: &str) -> Result<Cron, CronError> {
        let fail = |reason: String| CronError {
            expression: expression.to_owned(),
            reason,
        };
        let parts: Vec<&str> = expression.split_whitespace().collect();
        let (s, mi, h, d, mo, w, y) = match parts.as_slice() {
            [s, mi, h, d, mo, w, y] => (*s, *mi, *h, *d, *mo, *w, *y),
            [mi, h, d, mo, w] => ("0", *mi, *h, *d, *mo, *w, "*"),
            _ => {
                return Err(fail(format!(
                    "expected seven fields (seconds minutes hours day month weekday year, e.g. */5 * * * * * *), found {}",
                    parts.len()
                )));
            }
        };
        Ok(Cron {
            text: expression.trim().to_owned(),
            seconds: field(s, &SECONDS).map_err(fail)?,
            minutes: field(mi, &MINUTES).map_err(fail)?,
            hours: field(h, &HOURS).map_err(fail)?,
            days: field(d, &DAYS).map_err(fail)?,
            months: field(mo, &MONTHS).map_err(fail)?,
            weekdays: field(w, &WEEKDAYS).map_err(fail)?,
            years: field(y, &YEARS).map_err(fail)?,
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first time strictly after `after` (to the second) at which the expression fires, or `None` when it
    /// never fires again (its years are past).
    pub fn next_after(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        let local = after.to_offset(offset());
        let start = PrimitiveDateTime::new(
            local.date(),
            Time::from_hms(local.hour(), local.minute(), local.second()).ok()?,
        );
        let mut t = start.checked_add(time::Duration::SECOND)?;
        // Each step moves to the start of the next candidate unit; the years bound the walk.
        loop {
            let year = u32::try_from(t.year()).ok()?;
            if year > YEARS.max {
                return None;
            }
            if !self.years.has(year) {
                t = PrimitiveDateTime::new(
                    Date::from_calendar_date(t.year() + 1, Month::January, 1).ok()?,
                    Time::MIDNIGHT,
                );
                continue;
            }
            if !self.months.has(u32::from(u8::from(t.month()))) {
                let (y, m) = match t.month() {
                    Month::December => (t.year() + 1, Month::January),
                    m => (t.year(), m.next()),
                };
                t = PrimitiveDateTime::new(Date::from_calendar_date(y, m, 1).ok()?, Time::MIDNIGHT);
                continue;
            }
            if !self.day_matches(t.date()) {
                t = PrimitiveDateTime::new(t.date().next_day()?, Time::MIDNIGHT);
                continue;
            }
            if !self.hours.has(u32::from(t.hour())) {
                t = t
                    .replace_minute(0)
                    .ok()?
                    .replace_second(0)
                    .ok()?
                    .checked_add(time::Duration::HOUR)?;
                continue;
            }
            if !self.minutes.has(u32::from(t.minute())) {
                t = t
                    .replace_second(0)
                    .ok()?
                    .checked_add(time::Duration::MINUTE)?;
                continue;
            }
            if !self.seconds.has(u32::from(t.second())) {
                t = t.checked_add(time::Duration::SECOND)?;
                continue;
            }
            return Some(t.assume_offset(offset()).to_offset(UtcOffset::UTC));
        }
    }

    fn day_matches(&self, date: Date) -> bool {
        let dom = self.days.has(u32::from(date.day()));
        let dow = self
            .weekdays
            .has(u32::from(date.weekday().number_days_from_sunday()));
        if !self.days.any && !self.weekdays.any {
            dom || dow
        } else {
            dom && dow
        }
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn field(text: &str, spec: &Spec) -> Result<Field, String> {
    let count = (spec.max - spec.min + 1) as usize;
    let mut bits = vec![false; count];
    let any = text == "*";
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| {
                    format!("{}: the step in '{part}' is not a whole number", spec.name)
                })?;
                if step == 0 {
                    return Err(format!("{}: the step in '{part}' is 0", spec.name));
                }
                (r, step)
            }
            None => (part, 1),
        };
        let (from, to) = if range == "*" {
            (spec.min, spec.max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, spec, part)?, value(b, spec, part)?)
        } else {
            let v = value(range, spec, part)?;
            // `a/n` runs from a to the end of the range.
            (v, if step > 1 { spec.max } else { v })
        };
        if from > to {
            return Err(format!("{}: the range '{part}' runs backwards", spec.name));
        }
        let mut v = from;
        while v <= to {
            bits[(v - spec.min) as usize] = true;
            v += step;
        }
    }
    Ok(Field {
        min: spec.min,
        bits,
        any,
    })
}

fn value(text: &str, spec: &Spec, part: &str) -> Result<u32, String> {
    let upper = text.to_ascii_uppercase();
    let v = match spec.names.iter().position(|n| *n == upper) {
        Some(i) => spec.min + i as u32,
        None => text.parse::<u32>().map_err(|_| {
            let names = if spec.names.is_empty() {
                String::new()
            } else {
                format!(" or {}–{}", spec.names[0], spec.names[spec.names.len() - 1])
            };
            format!(
                "{}: '{part}' is not a value ({}–{}{names}; wildcards , - * /)",
                spec.name, spec.min, spec.max
            )
        })?,
    };
    if v < spec.min || v > spec.max {
        return Err(format!(
            "{}: {v} in '{part}' is outside {}–{}",
            spec.name, spec.min, spec.max
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).expect("time")
    }

    fn next(expr: &str, after: &str) -> String {
        let t = Cron::parse(expr)
            .expect("parses")
            .next_after(at(after))
            .expect("fires");
        t.format(&time::format_description::well_known::Rfc3339)
            .expect("formats")
    }

    #[test]
    fn every_five_seconds() {
        assert_eq!(
            next("*/5 * * * * * *", "2024-06-10T08:00:03Z"),
            "2024-06-10T08:00:05Z"
        );
        assert_eq!(
            next("*/5 * * * * * *", "2024-06-10T08:00:05Z"),
            "2024-06-10T08:00:10Z"
        );
        assert_eq!(
            next("*/5 * * * * * *", "2024-06-10T08:00:58.9Z"),
            "2024-06-10T08:01:00Z"
        );
    }

    #[test]
    fn fields_are_read_in_utc_plus_8() {
        // 02:00 every day in UTC+8 is 18:00 UTC the day before.
        assert_eq!(
            next("0 0 2 * * * *", "2024-06-10T00:00:00Z"),
            "2024-06-10T18:00:00Z"
        );
        // The older five-field form: minute 30 of every hour.
        assert_eq!(
            next("30 * * * *", "2024-06-10T08:31:00Z"),
            "2024-06-10T09:30:00Z"
        );
    }

    #[test]
    fn names_ranges_lists_and_the_day_rule() {
        // Mondays to Fridays at 09:30:00 (UTC+8): 2024-06-08 is a Saturday.
        assert_eq!(
            next("0 30 9 * * MON-FRI *", "2024-06-08T00:00:00Z"),
            "2024-06-10T01:30:00Z"
        );
        // The 1st and 15th of February and March.
        assert_eq!(
            next("0 0 0 1,15 FEB,MAR * *", "2024-02-02T00:00:00Z"),
            "2024-02-14T16:00:00Z"
        );
        // Day 13 or a Friday: both restricted, either matches (2024-09-06 is a Friday).
        assert_eq!(
            next("0 0 12 13 * 5 *", "2024-09-01T00:00:00Z"),
            "2024-09-06T04:00:00Z"
        );
        // Only 2099, and never again after it.
        assert!(
            Cron::parse("0 0 0 1 1 * 2023")
                .expect("parses")
                .next_after(at("2024-01-01T00:00:00Z"))
                .is_none()
        );
        // February 30th never comes; the walk ends with the years.
        assert!(
            Cron::parse("0 0 0 30 2 * *")
                .expect("parses")
                .next_after(at("2024-01-01T00:00:00Z"))
                .is_none()
        );
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        for (expr, says) in [
            ("* * * *", "seven fields"),
            ("61 * * * * * *", "outside 0–59"),
            ("*/0 * * * * * *", "step"),
            ("* * * * FOO * *", "JAN–DEC"),
            ("* * * * * 7 *", "outside 0–6"),
            ("5-1 * * * * * *", "backwards"),
            ("? * * * * * *", "not a value"),
        ] {
            let e = Cron::parse(expr).expect_err(expr);
            assert!(e.to_string().contains(says), "{expr}: {e}");
        }
    }
}
