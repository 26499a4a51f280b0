use hdnet_kernels::conv3x3::*;
use std::time::Instant;
fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    if args.len() != 4 {
        eprintln!("usage: conv_speed BATCH IN_CHANNELS OUT_CHANNELS SIZE");
        std::process::exit(2);
    }
    let s = ConvShape { batch: args[0], in_channels: args[1], out_channels: args[2], height: args[3], width: args[3] };
    let x = vec![0.1f32; s.input_len()];
    let w = vec![0.01f32; s.weight_len()];
    let b = vec![0.0f32; s.out_channels];
    let g = vec![0.01f32; s.output_len()];
    let flop = 2.0 * 9.0 * (s.batch * s.in_channels * s.out_channels * s.height * s.width) as f64;
    for _ in 0..2 {
        forward(&x, &w, Some(&b), s);
    }
    let t = Instant::now();
    let n = 5;
    for _ in 0..n {
        std::hint::black_box(forward(&x, &w, Some(&b), s));
    }
    let f = t.elapsed().as_secs_f64() / n as f64;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(input_grad(&g, &w, s));
    }
    let gi = t.elapsed().as_secs_f64() / n as f64;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(weight_grad(&x, &g, s));
    }
    let gw = t.elapsed().as_secs_f64() / n as f64;
    println!(
        "{s:?}: forward {:.1} ms ({:.0} GFLOP/s), input grad {:.1} ms ({:.0}), weight grad {:.1} ms ({:.0})",
        f * 1e3,
        flop / f / 1e9,
        gi * 1e3,
        flop / gi / 1e9,
        gw * 1e3,
        flop / gw / 1e9
    );
}
