//! The API Gateway listener as a project's APIs grow: a request to a function that declares many APIs
//! against the same request to one that declares only the API it is sent to, both on one CPU.
//!
//! The gateway tries every declared API for each request (the best match wins, as the real gateway's
//! ranking asks), so what each API adds is a comparison; a few µs per request in all would be lost in
//! where the scheduler puts the processes, hence one CPU ([`crate::one_cpu`]).

use std::path::Path;

use crate::floor::{NoopPlatform, cpu_ns, round_trips_at, with_warm_up};
use crate::{Report, Sample};

/// One platform's figures over the rounds.
#[derive(Default)]
pub struct Side {
    /// Every request's latency, µs.
    pub lat: Vec<f64>,
    /// The platform's CPU time per request, µs, one figure a round.
    pub cpu_us: Vec<f64>,
}

/// What [`measure`] found.
pub struct Routes {
    /// APIs the second platform's function declares (the one requested among them).
    pub apis: usize,
    /// The function of one API, and the function of [`Routes::apis`].
    pub one: Side,
    pub many: Side,
}

impl Routes {
    /// Each round's CPU per request of the many-API platform over the one-API platform's.
    pub fn cpu_ratios(&self) -> Sample {
        Sample(
            self.many
                .cpu_us
                .iter()
                .zip(&self.one.cpu_us)
                .map(|(m, o)| m / o)
                .collect(),
        )
    }
}

/// Two platforms at once on one CPU, one whose function declares only `POST /noop` and one whose function
/// declares `apis` APIs, `/noop` among them; `rounds` rounds of `per` requests to `/noop` on each, in turn
/// (each round starting at the other). `None` where the bench may not pin itself to one CPU.
pub async fn measure(
    root: &Path,
    native_dir: &Path,
    apis: usize,
    per: usize,
    rounds: usize,
) -> anyhow::Result<Option<(usize, Routes)>> {
    crate::one_cpu::on_one_cpu(async {
        let mut one = NoopPlatform::start_with_apis(root, native_dir, "routes-one", 0).await?;
        let mut many =
            match NoopPlatform::start_with_apis(root, native_dir, "routes-many", apis - 1).await {
                Ok(p) => p,
                Err(e) => {
                    one.stop();
                    return Err(e);
                }
            };
        let measured = rounds_on(&mut one, &mut many, apis, per, rounds).await;
        one.stop();
        many.stop();
        measured
    })
    .await
}

async fn rounds_on(
    one: &mut NoopPlatform,
    many: &mut NoopPlatform,
    apis: usize,
    per: usize,
    rounds: usize,
) -> anyhow::Result<Routes> {
    let (mut a, mut b) = (Side::default(), Side::default());
    for k in 0..rounds.max(1) {
        for i in [k % 2, 1 - k % 2] {
            let (p, side) = if i == 0 {
                (&mut *one, &mut a)
            } else {
                (&mut *many, &mut b)
            };
            let pid = p.child.id();
            let cpu0 = cpu_ns(pid);
            let lat = round_trips_at(&mut p.gateway, "/noop", per, &[], br#"{"k":"v"}"#).await?;
            side.cpu_us
                .push((cpu_ns(pid) - cpu0) / 1e3 / with_warm_up(per) as f64);
            side.lat.extend(lat.0);
        }
    }
    Ok(Routes {
        apis,
        one: a,
        many: b,
    })
}

/// The table of [`measure`], on CPU `cpu`, with its target: the platform's CPU per request within 1.2× of
/// the one-API platform's.
pub fn report(r: &mut Report, cpu: usize, routes: &Routes) {
    let rounds = routes.one.cpu_us.len();
    r.line(&format!(
        "The API Gateway listener as the APIs grow: `POST /noop` to a function that declares {} APIs, against the same request to a function that declares only that one, two platforms up at once with every process on CPU {cpu}, in {} of {} requests each, the two in turn. The gateway tries each declared API for a request (the best match wins), so this is what the APIs a project declares add to each request; a few µs, which as run would be lost in where the scheduler puts the processes. The ratios are the median round's.",
        routes.apis,
        crate::one_cpu::rounds(rounds),
        routes.one.lat.len() / rounds.max(1),
    ));
    r.line("");
    r.line("| APIs declared | p50 (µs) | vs one API | platform CPU per request (µs) | vs one API | target | |");
    r.line("|---|---|---|---|---|---|---|");
    let (one, many) = (
        Sample(routes.one.lat.clone()),
        Sample(routes.many.lat.clone()),
    );
    let (one_cpu, many_cpu) = (
        Sample(routes.one.cpu_us.clone()).median(),
        Sample(routes.many.cpu_us.clone()).median(),
    );
    r.line(&format!(
        "| 1 | {:.1} | | {one_cpu:.1} | | | |",
        one.median()
    ));
    let ratios = routes.cpu_ratios();
    let verdict = r.target(
        &format!(
            "API Gateway request with {} APIs declared: CPU within 1.2× of one API's",
            routes.apis
        ),
        ratios.median() <= 1.2,
    );
    r.line(&format!(
        "| {} | {:.1} | {:.2}× | {many_cpu:.1} | {:.2}× ({}) | ≤ 1.2× | {verdict} |",
        routes.apis,
        many.median(),
        many.median() / one.median(),
        ratios.median(),
        ratios.range(),
    ));
    r.line("");
}
