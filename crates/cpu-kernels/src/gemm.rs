//! A bounds-checked, single-threaded f32 GEMM over the `gemm` crate (callers parallelise over
//! the batch instead, which keeps every thread busy on small per-image matrices).

/// A read-only matrix view: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a> {
    pub(crate) data: &'a [f32],
    pub(crate) rs: usize,
    pub(crate) cs: usize,
}

impl<'a> Mat<'a> {
    /// A row-major `rows × cols` matrix.
    pub(crate) fn rows(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose of a row-major matrix with `cols` columns.
    pub(crate) fn transposed(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            rs: 1,
            cs: cols,
        }
    }

    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }
}

/// `c = a · b` (or `c += a · b` when `accumulate`) with `a` `m × k`, `b` `k × n` and `c` a
/// row-major `m × n` matrix.
pub(crate) fn gemm(
    (m, n, k): (usize, usize, usize),
    a: Mat<'_>,
    b: Mat<'_>,
    c: &mut [f32],
    accumulate: bool,
) {
    gemm_strided((m, n, k), a, b, (c, n, 1), accumulate);
}

/// [`gemm`] into `c` with element `(i, j)` at `c[i * rs + j * cs]`. The `gemm` crate packs a
/// strided reduction operand element by element; a column-major `c` lets it swap operand roles
/// instead (10x faster for a weight gradient `dy · colᵀ`, where both inputs are contiguous along
/// the reduction).
pub(crate) fn gemm_strided(
    (m, n, k): (usize, usize, usize),
    a: Mat<'_>,
    b: Mat<'_>,
    (c, rs, cs): (&mut [f32], usize, usize),
    accumulate: bool,
) {
    let c_fits = m == 0 || n == 0 || (m - 1) * rs + (n - 1) * cs < c.len();
    assert!(
        a.fits(m, k) && b.fits(k, n) && c_fits,
        "gemm operands smaller than {m}x{n}x{k}"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    c[i * rs + j * cs] = 0.0;
                }
            }
        }
        return;
    }
    // SAFETY: the assertion above keeps every index the kernel reads (`i·rs + j·cs` for
    // `i < rows`, `j < cols`) inside `a.data` and `b.data`, and every index it writes
    // (`i·rs + j·cs` of `c`) inside `c`; `c` is borrowed mutably, so it aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            cs as isize,
            rs as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}
