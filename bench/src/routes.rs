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
    pub lat: Sample,
    /// The platform's CPU time per request, µs, one figure a round.
    pub cpu_us: Sample,
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
                .0
                .iter()
                .zip(&self.one.cpu_us.0)
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
    let mut sides = [(one, Side::default()), (many, Side::default())];
    for k in 0..rounds.max(1) {
        for i in [k % 2, 1 - k % 2] {
            let (p, side) = &mut sides[i];
            let pid = p.child.id();
            let cpu0 = cpu_ns(pid);
            let lat = round_trips_at(&mut p.gateway, "/noop", per, &[], br#"{"k":"v"}"#).await?;
            side.cpu_us
                .0
                .push((cpu_ns(pid) - cpu0) / 1e3 / with_warm_up(per) as f64);
            side.lat.0.extend(lat.0);
        }
    }
    let [(_, one), (_, many)] = sides;
    Ok(Routes { apis, one, many })
}

/// The table of [`measure`], on CPU `cpu`, with its target: the platform's CPU per request within 1.2× of
/// the one-API platform's.
pub fn report(r: &mut Report, cpu: usize, routes: &Routes) {
    let rounds = routes.one.cpu_us.0.len();
    r.line(&format!(
        "The API Gateway listener as the APIs grow: `POST /noop` to a function that declares {} APIs, against the same request to a function that declares only that one, two platforms up at once with every process on CPU {cpu}, in {} of {} requests each, the two in turn. The gateway tries each declared API for a request (the best match wins), so this is what the APIs a project declares add to each request; a few µs, which as run would be lost in where the scheduler puts the processes. The ratios are the median round's.",
        routes.apis,
        crate::one_cpu::rounds(rounds),
        routes.one.lat.0.len() / rounds.max(1),
    ));
    r.line("");
    r.line("| APIs declared | p50 (µs) | vs one API | platform CPU per request (µs) | vs one API | target | |");
    r.line("|---|---|---|---|---|---|---|");
    let (one, many) = (&routes.one.lat, &routes.many.lat);
    let (one_cpu, many_cpu) = (routes.one.cpu_us.median(), routes.many.cpu_us.median());
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
