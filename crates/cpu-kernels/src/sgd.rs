//! The two fused in-place passes of momentum SGD (PyTorch semantics), without temporaries.

use crate::error::{Result, check_len};

/// `buf ← μ·buf + g + wd·w` element-wise, in place on the momentum buffer.
pub fn momentum_update(
    buf: &mut [f32],
    g: &[f32],
    w: &[f32],
    momentum: f32,
    weight_decay: f32,
) -> Result<()> {
    check_len("momentum update gradient", g, buf.len())?;
    check_len("momentum update weight", w, buf.len())?;
    let (mu, wd) = (momentum, weight_decay);
    for ((b, &g), &w) in buf.iter_mut().zip(g).zip(w) {
        *b = mu * *b + g + wd * w;
    }
    Ok(())
}

/// `w ← w − lr·buf` element-wise, in place on the weight.
pub fn descend(w: &mut [f32], buf: &[f32], lr: f32) -> Result<()> {
    check_len("sgd step buffer", buf, w.len())?;
    for (w, &b) in w.iter_mut().zip(buf) {
        *w -= lr * b;
    }
    Ok(())
}
