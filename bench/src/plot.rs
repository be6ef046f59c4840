//! The pictures beside the report: latency distributions (ours, AWS's clients and the floor, same run) and
//! the scale curves, as SVG (text is left to the viewer's fonts, so nothing here needs a font file).

use std::path::Path;

use plotters::prelude::*;

use crate::Sample;
use crate::curve::WarmPoint;
use crate::scale::Scale;

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing: {e}")
}

/// One line of a picture: its name and points.
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// The cumulative distribution of `s`: (latency µs, fraction of requests at or below it), at most 200
/// points.
pub fn cdf(name: &str, s: &Sample) -> Line {
    let mut v = s.0.clone();
    v.sort_by(f64::total_cmp);
    let n = v.len().max(1);
    let step = (n / 200).max(1);
    let mut points: Vec<(f64, f64)> = v
        .iter()
        .enumerate()
        .step_by(step)
        .map(|(i, &x)| (x.max(1.0), (i + 1) as f64 / n as f64))
        .collect();
    if let Some(&last) = v.last() {
        points.push((last.max(1.0), 1.0));
    }
    Line {
        name: name.to_owned(),
        points,
    }
}

/// Draws `lines` into `area` with a log-scale x axis.
fn chart(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    lines: &[Line],
    y_from_zero: bool,
    legend: SeriesLabelPosition,
) -> anyhow::Result<()> {
    let xs = lines.iter().flat_map(|l| l.points.iter().map(|p| p.0));
    let ys = lines.iter().flat_map(|l| l.points.iter().map(|p| p.1));
    let (x0, x1) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    let (y0, y1) = ys.fold((f64::MAX, f64::MIN), |(a, b), y| (a.min(y), b.max(y)));
    if !(x0.is_finite() && x1.is_finite() && y0.is_finite() && y1.is_finite()) {
        return Ok(());
    }
    let (x0, x1) = ((x0 * 0.8).max(0.1), x1 * 1.25);
    let (y0, y1) = if y_from_zero {
        (0.0, y1 * 1.1)
    } else {
        (y0, y1)
    };
    let mut c = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((x0..x1).log_scale(), y0..y1.max(y0 + 1e-9))
        .map_err(err)?;
    c.configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_labels(8)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| {
            if y.abs() >= 10.0 {
                format!("{y:.0}")
            } else {
                format!("{y:.2}")
            }
        })
        .light_line_style(WHITE)
        .draw()
        .map_err(err)?;
    for (i, l) in lines.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        c.draw_series(LineSeries::new(
            l.points.iter().copied(),
            color.stroke_width(2),
        ))
        .map_err(err)?
        .label(l.name.clone())
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        c.draw_series(l.points.iter().map(|&p| Circle::new(p, 2, color.filled())))
            .map_err(err)?;
    }
    c.configure_series_labels()
        .position(legend)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// The warm no-op latency distributions of every runtime and the floor, one picture.
pub fn latency(path: &Path, lines: &[Line]) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    chart(
        &root,
        "Warm no-op invocation: latency distribution (same run)",
        "latency, µs (log scale)",
        "fraction of invocations at or below",
        lines,
        false,
        SeriesLabelPosition::LowerRight,
    )?;
    root.present().map_err(err)?;
    Ok(())
}

/// One figure of a warm-instance curve against the instances held.
fn warm_line(name: &str, points: &[WarmPoint], figure: fn(&WarmPoint) -> f64) -> Line {
    Line {
        name: name.into(),
        points: points
            .iter()
            .map(|p| (p.instances as f64, figure(p)))
            .collect(),
    }
}

/// The scale curves: warm instances (as run, and on one CPU where measured), async backlog, stored log
/// records; one picture, a panel each.
pub fn scale(path: &Path, sc: &Scale) -> anyhow::Result<()> {
    // With the curve on one CPU, two rows: the curve as run and on one CPU above, the store's curves below.
    let (size, grid) = match sc.warm_one_cpu {
        Some(_) => ((1200, 840), (2, 2)),
        None => ((1200, 420), (1, 3)),
    };
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let panels = root.split_evenly(grid);
    let mut panel = panels.iter();
    let mut next = || {
        panel
            .next()
            .ok_or_else(|| anyhow::anyhow!("a panel too few"))
    };
    let warm = [
        warm_line("sync p50", &sc.warm, |p| p.held.p50_us()),
        warm_line("sync p99", &sc.warm, |p| p.held.p99_us()),
        warm_line("platform CPU per call", &sc.warm, |p| {
            p.held.cpu_us_per_call()
        }),
    ];
    chart(
        next()?,
        "Sync Invoke vs warm instances held",
        "warm instances (log scale)",
        "µs",
        &warm,
        true,
        SeriesLabelPosition::LowerRight,
    )?;
    if let Some((cpu, points)) = &sc.warm_one_cpu {
        let pinned = [
            warm_line("sync p50", points, |p| p.held.p50_us()),
            warm_line("platform CPU per call", points, |p| {
                p.held.cpu_us_per_call()
            }),
            warm_line("floor p50: as many bare echo servers", points, |p| {
                p.floor.p50_us()
            }),
        ];
        chart(
            next()?,
            &format!("The same with every process on CPU {cpu}"),
            "warm instances (log scale)",
            "µs",
            &pinned,
            true,
            SeriesLabelPosition::UpperLeft,
        )?;
    }
    // A backlog of 0 cannot sit on a log scale: it is drawn at 1.
    let accept = [Line {
        name: "durable async accept, 16 clients".into(),
        points: sc
            .accept
            .iter()
            .map(|p| ((p.size as f64).max(1.0), p.value))
            .collect(),
    }];
    chart(
        next()?,
        "Async accept vs queued backlog",
        "events already queued (log scale; 0 drawn at 1)",
        "events/s",
        &accept,
        true,
        SeriesLabelPosition::LowerRight,
    )?;
    let logs = [Line {
        name: "GetFunctionLogs by request id, p50".into(),
        points: sc.logs.iter().map(|p| (p.size as f64, p.value)).collect(),
    }];
    chart(
        next()?,
        "Log query vs records stored",
        "records stored (log scale)",
        "µs",
        &logs,
        true,
        SeriesLabelPosition::LowerRight,
    )?;
    root.present().map_err(err)?;
    Ok(())
}
