//! The readable terminal of `scf-local serve` and `scf-local logs --follow`: one line per finished request
//! (time, function, trigger, request id, status, duration, cold or warm) with the function's own output
//! indented under it, on stdout; reloads and builds on stderr beside the platform's other lines. Coloured
//! when the stream is a terminal, unless `NO_COLOR` is set.
//!
//! `serve` prints from a thread of its own that reads the platform's [`Events`], so a slow terminal never
//! holds the platform up: a printer that falls behind says how many lines it missed.

use std::fmt::Write as _;
use std::io::{IsTerminal as _, Write as _};
use std::sync::OnceLock;

use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use crate::activity::{Event, Events, Invocation, Reload};

/// How text is shown on one stream.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    color: bool,
}

impl Style {
    /// Plain text.
    pub const PLAIN: Style = Style { color: false };

    /// Colours when `stream_is_terminal` and `NO_COLOR` is unset or empty (<https://no-color.org>).
    pub fn detect(stream_is_terminal: bool) -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            color: stream_is_terminal && !no_color,
        }
    }

    /// The style of stdout.
    pub fn stdout() -> Style {
        Style::detect(std::io::stdout().is_terminal())
    }

    /// The style of stderr.
    pub fn stderr() -> Style {
        Style::detect(std::io::stderr().is_terminal())
    }

    fn paint(self, code: &str, text: &str) -> String {
        self.painted(code, text).to_string()
    }

    /// `text` in colour `code`, written where it goes.
    fn painted<T: std::fmt::Display>(self, code: &str, text: T) -> Painted<'_, T> {
        Painted {
            color: self.color,
            code,
            text,
        }
    }
}

/// [`Style::painted`]'s text.
struct Painted<'a, T> {
    color: bool,
    code: &'a str,
    text: T,
}

impl<T: std::fmt::Display> std::fmt::Display for Painted<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.color {
            write!(f, "\x1b[{}m{}\x1b[0m", self.code, self.text)
        } else {
            self.text.fmt(f)
        }
    }
}

static LOCAL_OFFSET: OnceLock<time::UtcOffset> = OnceLock::new();

/// Reads the machine's time zone, so that lines show local time. Call it while the process has one thread
/// (first thing in `main`): the offset cannot be read safely later. Without it, times are UTC.
pub fn init_local_time() {
    if let Ok(offset) = time::UtcOffset::current_local_offset() {
        let _ = LOCAL_OFFSET.set(offset);
    }
}

/// `HH:MM:SS.mmm` of `ms` since the epoch, in local time (see [`init_local_time`]).
pub fn clock(ms: i64) -> String {
    Clock(ms).to_string()
}

/// [`clock`], written where it goes.
struct Clock(i64);

impl std::fmt::Display for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let offset = LOCAL_OFFSET.get().copied().unwrap_or(time::UtcOffset::UTC);
        match time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000) {
            Ok(t) => {
                let t = t.to_offset(offset);
                write!(
                    f,
                    "{:02}:{:02}:{:02}.{:03}",
                    t.hour(),
                    t.minute(),
                    t.second(),
                    t.millisecond()
                )
            }
            Err(_) => f.write_str("--:--:--.---"),
        }
    }
}

/// A request's duration as its line shows it.
struct Took(f64);

impl std::fmt::Display for Took {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 >= 1000.0 {
            write!(f, "{:.2}s", self.0 / 1000.0)
        } else {
            write!(f, "{:.2}ms", self.0)
        }
    }
}

/// What made a request, as its line shows it.
struct Trigger<'a>(&'a Invocation);

impl std::fmt::Display for Trigger<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.0.trigger, self.0.retry_num) {
            ("async", n) if n > 0 => write!(f, "async (retry {n})"),
            (t, _) => f.write_str(t),
        }
    }
}

/// The lines of one finished request: its summary line, then the function's output and the error indented.
pub fn invocation(i: &Invocation, style: Style) -> String {
    let mut out = String::new();
    write_invocation(&mut out, i, style);
    out
}

/// [`invocation`], written at the end of `out` (the printer's buffer: no string of its own per request).
pub fn write_invocation(out: &mut String, i: &Invocation, style: Style) {
    let ok = i.ret_code == 0;
    let status = style.painted(if ok { "32" } else { "1;31" }, &i.status);
    let temperature = if i.cold {
        style.painted("33", "cold")
    } else {
        style.painted("2", "warm")
    };
    let (clock, function) = (
        style.painted("2", Clock(i.start_ms)),
        style.painted("1;36", &i.function),
    );
    let trigger = Trigger(i);
    let _ = if i.trigger == "provisioned" {
        writeln!(
            out,
            "{clock} {function} {trigger} instance {} {status}",
            if ok { "started" } else { "failed to start" },
        )
    } else {
        writeln!(
            out,
            "{clock} {function} {trigger} {} {status} {} {temperature}",
            style.painted("2", &i.request_id),
            Took(i.duration_ms),
        )
    };
    for line in &i.lines {
        out.push_str("    ");
        out.push_str(line);
        out.push('\n');
    }
    if i.more_lines > 0 {
        let _ = write!(
            out,
            "{}",
            style.painted(
                "2",
                format_args!(
                    "    … {} more lines: scf-local logs {} --request-id {}\n",
                    i.more_lines, i.function, i.request_id
                )
            )
        );
    }
    if let Some(e) = &i.error {
        let _ = writeln!(out, "    {}", style.painted("31", format_args!("! {e}")));
        if let Some(trace) = &i.stack_trace {
            for line in trace.lines().take(crate::activity::MAX_SHOWN_LINES) {
                let _ = writeln!(out, "      {}", style.painted("31", line));
            }
        }
    }
}

/// The line of one reload.
pub fn reload(r: &Reload, style: Style) -> String {
    let what = match r.changed.as_slice() {
        [] => "a change".to_owned(),
        [one] if r.changes == 1 => one.clone(),
        names => {
            let shown = names.join(", ");
            if r.changes > names.len() {
                format!("{shown} and {} more", r.changes - names.len())
            } else {
                shown
            }
        }
    };
    let mut line = format!(
        "scf-local: {} {}: {what} changed; ",
        style.paint("1;35", "reload"),
        style.paint("1;36", &r.function)
    );
    if r.outcome == "reloaded" {
        line.push_str(&format!(
            "{} idle instance{} retired, {} busy finishing first; the next call starts the new code",
            r.retired,
            if r.retired == 1 { "" } else { "s" },
            r.draining
        ));
    } else {
        line.push_str(&style.paint("1;31", &r.outcome));
        line.push_str(match r.outcome.as_str() {
            "build failed" => ": the old instances stay",
            "config error" => ": the old configuration stays",
            _ => "",
        });
    }
    line.push('\n');
    if let Some(detail) = &r.detail {
        for l in detail.lines() {
            line.push_str(&format!("    {l}\n"));
        }
    }
    line
}

/// One line of a function's build.
pub fn build_line(function: &str, line: &str, style: Style) -> String {
    format!(
        "scf-local: {} {function}: {}\n",
        style.paint("1;35", "build"),
        line.trim_end()
    )
}

/// How long the printer lets events gather after it printed some: the events sent meanwhile wake nobody,
/// so a busy platform pays one wake-up of the printer per interval, not one per event (three per
/// invocation), and a line reaches the terminal at most this much later.
pub const PRINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

/// Prints the platform's events as `serve`'s terminal shows them (requests on stdout unless `quiet`,
/// reloads and builds on stderr), on a thread of its own, until the events end: everything that arrived
/// together in one write, then [`PRINT_INTERVAL`] before it waits again.
pub fn spawn_printer(events: &Events, quiet: bool) -> std::io::Result<std::thread::JoinHandle<()>> {
    let mut rx = events.subscribe();
    let (out_style, err_style) = (Style::stdout(), Style::stderr());
    std::thread::Builder::new()
        .name("scf-terminal".into())
        .spawn(move || {
            let (mut out, mut err) = (String::new(), String::new());
            loop {
                let mut next = Some(rx.blocking_recv());
                let mut closed = false;
                while let Some(received) = next.take() {
                    match received {
                        Ok(event) => match &*event {
                            Event::Invocation(i) if !quiet => {
                                write_invocation(&mut out, &i.summary(), out_style);
                            }
                            Event::Reload(r) => err.push_str(&reload(r, err_style)),
                            Event::Build { function, line } => {
                                err.push_str(&build_line(function, line, err_style));
                            }
                            _ => {}
                        },
                        Err(RecvError::Lagged(n)) => out.push_str(&format!(
                            "scf-local: {n} events not shown (the terminal was slower than the platform; `scf-local logs` has every request)\n"
                        )),
                        Err(RecvError::Closed) => closed = true,
                    }
                    if !closed {
                        next = match rx.try_recv() {
                            Ok(e) => Some(Ok(e)),
                            Err(TryRecvError::Lagged(n)) => Some(Err(RecvError::Lagged(n))),
                            Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
                            Err(TryRecvError::Empty) => None,
                        };
                    }
                }
                if !out.is_empty() {
                    let mut o = std::io::stdout().lock();
                    let _ = o.write_all(out.as_bytes());
                    let _ = o.flush();
                    out.clear();
                }
                if !err.is_empty() {
                    let _ = std::io::stderr().write_all(err.as_bytes());
                    err.clear();
                }
                if closed {
                    return;
                }
                std::thread::sleep(PRINT_INTERVAL);
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_one_line_with_its_output_indented() {
        let i = Invocation {
            function: "hello".into(),
            request_id: "r-1".into(),
            start_ms: 0,
            duration_ms: 1.5,
            trigger: "sync",
            retry_num: 0,
            ret_code: 430,
            status: "430 UnhandledError".into(),
            error: Some("boom".into()),
            cold: true,
            mem_usage: 0,
            lines: vec!["printed".into()],
            more_lines: 0,
            stack_trace: Some("at main".into()),
        };
        let text = invocation(&i, Style::PLAIN);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].ends_with(" hello sync r-1 430 UnhandledError 1.50ms cold"),
            "{text}"
        );
        assert_eq!(&lines[1..], ["    printed", "    ! boom", "      at main"]);
        let coloured = Style { color: true };
        assert!(invocation(&i, coloured).contains("\x1b[1;31m430 UnhandledError\x1b[0m"));
    }

    #[test]
    fn a_request_is_written_whole_in_colour_and_without() {
        let i = Invocation {
            function: "f".into(),
            request_id: "r".into(),
            start_ms: 1_500,
            duration_ms: 2500.0,
            trigger: "async",
            retry_num: 2,
            ret_code: 0,
            status: "ok".into(),
            error: None,
            cold: false,
            mem_usage: 0,
            lines: vec!["a".into()],
            more_lines: 3,
            stack_trace: None,
        };
        assert_eq!(
            invocation(&i, Style::PLAIN),
            "00:00:01.500 f async (retry 2) r ok 2.50s warm\n    a\n    … 3 more lines: scf-local logs f --request-id r\n"
        );
        assert_eq!(
            invocation(&i, Style { color: true }),
            "\x1b[2m00:00:01.500\x1b[0m \x1b[1;36mf\x1b[0m async (retry 2) \x1b[2mr\x1b[0m \x1b[32mok\x1b[0m 2.50s \x1b[2mwarm\x1b[0m\n    a\n\x1b[2m    … 3 more lines: scf-local logs f --request-id r\n\x1b[0m"
        );
        let provisioned = Invocation {
            trigger: "provisioned",
            lines: Vec::new(),
            more_lines: 0,
            ..i
        };
        let mut out = String::from("before\n");
        write_invocation(&mut out, &provisioned, Style::PLAIN);
        assert_eq!(
            out,
            "before\n00:00:01.500 f provisioned instance started ok\n"
        );
    }

    #[test]
    fn a_reload_says_what_it_did() {
        let r = Reload {
            function: "hello".into(),
            changed: vec!["index.py".into()],
            changes: 1,
            outcome: "reloaded".into(),
            retired: 1,
            draining: 0,
            detail: None,
        };
        assert_eq!(
            reload(&r, Style::PLAIN),
            "scf-local: reload hello: index.py changed; 1 idle instance retired, 0 busy finishing first; the next call starts the new code\n"
        );
    }
}
