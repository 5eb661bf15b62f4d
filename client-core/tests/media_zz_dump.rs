mod media_support;
use client_core::media::*;
#[test]
fn dump() {
    let mut out = String::new();
    for name in media_support::ALL {
        let file = media_support::read(name);
        let mut probe = Probe::new(file.len() as u64);
        let mut n = 0;
        let plan = loop {
            n += 1;
            assert!(n < 100, "{name}");
            match probe.poll(&|_| true) {
                ProbeStep::Ready(p) => break p,
                ProbeStep::Need(r) => probe.feed(r.start, &file[r.start as usize..r.end as usize]),
            }
        };
        let mime = plan
            .mime_type()
            .unwrap_or_else(|| panic!("{name} {plan:?}"))
            .to_string();
        let bytes = match &plan {
            MediaPlan::Remux(r) => {
                let mut o = r.init_segment().to_vec();
                for i in 0..r.fragment_count() {
                    let p = r.fragment_plan(i).unwrap();
                    let f: Vec<&[u8]> = p
                        .fetch
                        .iter()
                        .map(|x| &file[x.start as usize..x.end as usize])
                        .collect();
                    o.extend(r.build_fragment(i, &f).unwrap());
                }
                o
            }
            MediaPlan::RawAudio(a) => file[a.data_start as usize..].to_vec(),
            _ => file.clone(),
        };
        std::fs::write(format!("/tmp/msetest/{name}"), &bytes).unwrap();
        out.push_str(&format!("{name}\t{mime}\n"));
    }
    std::fs::write("/tmp/msetest/list.tsv", out).unwrap();
}
