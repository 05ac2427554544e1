//! The event-queue core loop, alone: the classic "hold" model. `N` processes each hold an event; popping
//! one schedules its successor a random delay later (so the heap stays at `N` entries), for `EVENTS`
//! events. Prints events per second. Run: cargo bench -p hedge-sim --bench core_loop

use hedge_sim::rng::{SimRng, Stream};
use hedge_sim::EventQueue;

#[derive(Clone, Copy)]
struct Ev {
    process: u32,
    #[allow(dead_code)]
    payload: u64,
}

#[allow(clippy::disallowed_methods)] // a benchmark measures wall time
fn main() {
    const EVENTS: u64 = 20_000_000;
    for n in [1_000u32, 100_000] {
        let mut rng = SimRng::new(1, Stream::Arrivals);
        let delays: Vec<i64> = (0..4096).map(|_| rng.exp(3600.0) as i64 + 1).collect();
        let mut q = EventQueue::with_capacity(n as usize);
        for p in 0..n {
            q.schedule(
                delays[p as usize % delays.len()],
                Ev {
                    process: p,
                    payload: 0,
                },
            );
        }
        let t0 = std::time::Instant::now();
        let mut checksum = 0u64;
        let mut i = 0usize;
        while q.processed() < EVENTS {
            let (now, ev) = q.next().expect("the hold model never runs dry");
            checksum = checksum.wrapping_add(ev.process as u64 ^ now as u64);
            i = (i + 1) & 4095;
            q.schedule(
                now + delays[i],
                Ev {
                    process: ev.process,
                    payload: checksum,
                },
            );
        }
        let s = t0.elapsed().as_secs_f64();
        println!("core loop, {n} pending events: {EVENTS} events in {s:.2} s = {:.1} M events/s (checksum {checksum})", EVENTS as f64 / s / 1e6);
    }
}
