//! Thread-local scratch buffers, reused across calls so that im2col columns are not allocated
//! (and zero-filled) for every image of every step.

use std::cell::RefCell;

thread_local! {
    static COLS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's scratch buffer resized to `len` (contents unspecified: callers
/// overwrite what they read).
pub(crate) fn with_cols<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    COLS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
            f(&mut buf[..len])
        }
        // Re-entered on this thread (a nested rayon job): use a private buffer.
        Err(_) => f(&mut vec![0.0; len]),
    })
}
