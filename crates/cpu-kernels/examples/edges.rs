//! A 3×3 edge filter, ReLU and 2×2 max pooling on an 8×8 image held in plain slices.
//!
//! `cargo run -p cpu-kernels --example edges`
#![allow(clippy::print_stdout)] // an example's output is the point

use cpu_kernels::MaxPool2d;
use cpu_kernels::conv::{Conv2dGeom, Conv2dParams};
use cpu_kernels::pointwise::relu;

fn print_plane(title: &str, plane: &[f32], width: usize) {
    println!("{title}:");
    for row in plane.chunks(width) {
        let cells: Vec<String> = row.iter().map(|v| format!("{v:>4}")).collect();
        println!("  {}", cells.join(""));
    }
}

fn main() -> cpu_kernels::Result<()> {
    // One 8×8 grey image: a bright 4×4 square on a dark background.
    let (h, w) = (8, 8);
    let image: Vec<f32> = (0..h * w)
        .map(|i| {
            if (2..6).contains(&(i / w)) && (2..6).contains(&(i % w)) {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    print_plane("input [1, 1, 8, 8]", &image, w);

    // A Laplacian kernel, padding 1 so the output keeps the 8×8 size.
    let laplacian = [0., -1., 0., -1., 4., -1., 0., -1., 0.];
    let params = Conv2dParams {
        stride: 1,
        padding: 1,
        groups: 1,
    };
    let conv = Conv2dGeom::new(&[1, 1, h, w], &[1, 1, 3, 3], params)?;
    let edges = conv.forward(&image, &laplacian, None)?;
    print_plane("conv2d 3x3 Laplacian, padding 1", &edges, w);

    let active = relu(&edges);
    let pool = MaxPool2d::new(2, h, w)?;
    let pooled = pool.forward(&active)?;
    let (oh, ow) = pool.out();
    print_plane(
        &format!("ReLU, then 2x2 max pool -> [1, 1, {oh}, {ow}]"),
        &pooled,
        ow,
    );

    // Sizes that do not fit together are errors, not panics.
    if let Err(e) = Conv2dGeom::new(&[1, 2, h, w], &[1, 1, 3, 3], params) {
        println!("rejected: {e}");
    }
    Ok(())
}
