use client_core::media::*;
#[test]
fn debug() {
    let path = std::env::var("F").unwrap();
    let data = std::fs::read(path).unwrap();
    let len = data.len() as u64;
    let mut probe = Probe::new(len);
    for _ in 0..12 {
        match probe.poll(&|_| true) {
            ProbeStep::Ready(plan) => {
                println!("ready {:?}", plan.mime_type());
                return;
            }
            ProbeStep::Need(range) => {
                println!("need {range:?} of {len}");
                let start = range.start / 16384 * 16384;
                let end = range.end.div_ceil(16384).saturating_mul(16384).min(len);
                probe.feed(start, &data[start as usize..end as usize]);
            }
        }
    }
}
