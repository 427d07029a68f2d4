//! Loop blocking and loop order over the batch, channel and filter loops (docs/energy-models.md B.5).
//!
//! The three outer loops of a layer, `N'` (images × ofmap strips), `C` (channels per group) and
//! `M` (filters per group), are each split into three factors: level 0 walks the buffer tiles
//! (DRAM → buffer), level 1 walks the array tiles inside a buffer tile (buffer → array), level 2
//! is the array tile itself, spread over the PE set's replicas and the register files. Levels 0
//! and 1 each carry a loop order.
//!
//! Fetch rule: an operand is re-fetched once per iteration of every loop that is irrelevant to it
//! and sits outside its innermost non-trivial relevant loop. Relevance: weights ↔ {C, M}, inputs
//! ↔ {N', C}, outputs ↔ {N', M}. Psums fetched `f` times cost `2f − 1` transfers (the first pass
//! only writes).
//!
//! The search is exhaustive over divisor factorisations and the six orders per level, in a fixed
//! enumeration order; a candidate replaces the incumbent only when strictly cheaper, so ties keep
//! the first one found and the result is deterministic.

use serde::{Deserialize, Serialize};
use tensor_core::Operand;

/// One of the three blocked loops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Loop {
    /// Images times ofmap strips (`N' = N·fold_w`).
    Batch,
    /// Input channels of one group.
    Channel,
    /// Filters (output channels) of one group.
    Filter,
}

impl Loop {
    /// The three loops, in the order blocking factors are indexed.
    pub const ALL: [Loop; 3] = [Loop::Batch, Loop::Channel, Loop::Filter];

    /// Whether the loop indexes `operand`'s data.
    pub fn relevant_to(self, operand: Operand) -> bool {
        !matches!(
            (self, operand),
            (Loop::Batch, Operand::Weight)
                | (Loop::Channel, Operand::Output)
                | (Loop::Filter, Operand::Input)
        )
    }
}

/// The six loop orders, outermost first, in the fixed enumeration order of the search.
pub const ORDERS: [[Loop; 3]; 6] = [
    [Loop::Batch, Loop::Channel, Loop::Filter],
    [Loop::Batch, Loop::Filter, Loop::Channel],
    [Loop::Channel, Loop::Batch, Loop::Filter],
    [Loop::Channel, Loop::Filter, Loop::Batch],
    [Loop::Filter, Loop::Batch, Loop::Channel],
    [Loop::Filter, Loop::Channel, Loop::Batch],
];

/// A blocking of the three loops: `factors[level][loop]` with levels 0 (buffer tiles), 1 (array
/// tiles) and 2 (inside the array), and the loop order of levels 0 and 1, outermost first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Blocking {
    /// Blocking factors, indexed `[level][Loop as usize]`.
    pub factors: [[usize; 3]; 3],
    /// Loop orders of levels 0 and 1, outermost first.
    pub orders: [[Loop; 3]; 2],
}

impl Blocking {
    /// How often `operand`'s data crosses into `level` + 1 (0: from DRAM into the buffer, 1:
    /// from the buffer into the array), counted over the loops of levels `0..=level`.
    pub fn fetches(&self, operand: Operand, level: usize) -> usize {
        let mut state = (1, 1);
        for lv in 0..=level {
            state = walk(state, &self.factors[lv], &self.orders[lv], operand);
        }
        state.0
    }

    /// Size of `operand`'s tile at `level` in units (product of the relevant factors of levels
    /// `level..=2`).
    pub fn tile_units(&self, operand: Operand, level: usize) -> usize {
        Loop::ALL
            .iter()
            .filter(|l| l.relevant_to(operand))
            .map(|&l| {
                (level..3)
                    .map(|lv| self.factors[lv][l as usize])
                    .product::<usize>()
            })
            .product()
    }
}

/// One level of the fetch rule: `(fetches so far, irrelevant factors not yet confirmed)`.
/// Irrelevant loops count only once a non-trivial relevant loop shows up inside them.
fn walk(
    (mut product, mut pending): (usize, usize),
    factors: &[usize; 3],
    order: &[Loop; 3],
    operand: Operand,
) -> (usize, usize) {
    for &l in order {
        let f = factors[l as usize];
        if f == 1 {
            continue;
        }
        if l.relevant_to(operand) {
            product *= pending;
            pending = 1;
        } else {
            pending *= f;
        }
    }
    (product, pending)
}

/// Ordered factorisations `(a, b, c)` with `a·b·c = x`, in lexicographic order.
pub(crate) fn triples(x: usize) -> Vec<[usize; 3]> {
    let divs = divisors(x);
    let mut out = Vec::new();
    for &a in &divs {
        for &b in &divs {
            if (x / a).is_multiple_of(b) {
                out.push([a, b, x / a / b]);
            }
        }
    }
    out
}

/// Divisors of `x` in increasing order.
fn divisors(x: usize) -> Vec<usize> {
    let mut small = Vec::new();
    let mut large = Vec::new();
    let mut d = 1;
    while d * d <= x {
        if x.is_multiple_of(d) {
            small.push(d);
            if d * d != x {
                large.push(x / d);
            }
        }
        d += 1;
    }
    small.extend(large.into_iter().rev());
    small
}

/// One group of one layer as the search sees it: loop bounds, per-unit word counts and the
/// price of one word per level and operand. A unit is one (image-strip, channel, filter) triple.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Problem {
    /// Loop bounds `[N', C, M]`.
    pub(crate) dims: [usize; 3],
    /// Words per unit moved between DRAM and the buffer, `[W, I, O]`.
    pub(crate) unit: [usize; 3],
    /// Words per unit read from the buffer into the array, `[W, I, O]` (height folds included).
    pub(crate) glb_unit: [usize; 3],
    /// Words per unit delivered to PEs over the array network, `[W, I, O]`.
    pub(crate) array_unit: [usize; 3],
    /// Height folds: psums return to the buffer between folds.
    pub(crate) fold_h: usize,
    /// Filter width `S`: words of one filter or ifmap row window in a register file.
    pub(crate) s: usize,
    /// Concurrent replicas of the PE set.
    pub(crate) replicas: usize,
    /// Buffer capacity in 16-bit words.
    pub(crate) glb_words: usize,
    /// Register-file capacity per PE in 16-bit words.
    pub(crate) rf_words: usize,
    /// Price of one counted word, `[DRAM, buffer, array][W, I, O]`.
    pub(crate) price: [[f64; 3]; 3],
}

/// Word counts `[DRAM, buffer, array][W, I, O]` of one group under `b`.
pub(crate) fn accesses(p: &Problem, b: &Blocking) -> [[f64; 3]; 3] {
    let mut a = [[0.0; 3]; 3];
    for t in Operand::ALL {
        let i = t as usize;
        a[0][i] = dram_words(p, t, b.fetches(t, 0));
        let [glb, array] = on_chip_words(p, t, b.fetches(t, 1));
        a[1][i] = glb;
        a[2][i] = array;
    }
    a
}

fn distinct(p: &Problem, t: Operand) -> f64 {
    let [n, c, m] = p.dims;
    (match t {
        Operand::Weight => c * m,
        Operand::Input => n * c,
        Operand::Output => n * m,
    }) as f64
}

/// DRAM words of `t` fetched `f0` times; psums: the first visit writes, later ones read and
/// write back.
fn dram_words(p: &Problem, t: Operand, f0: usize) -> f64 {
    let visits = if t == Operand::Output { 2 * f0 - 1 } else { f0 };
    distinct(p, t) * (p.unit[t as usize] * visits) as f64
}

/// Buffer and array words of `t` delivered `f1` times (psums also between height folds).
fn on_chip_words(p: &Problem, t: Operand, f1: usize) -> [f64; 2] {
    let (glb, array) = if t == Operand::Output {
        (2 * f1 * p.fold_h - 1, f1 * p.fold_h)
    } else {
        (f1, f1)
    };
    let d = distinct(p, t);
    let i = t as usize;
    [
        d * (p.glb_unit[i] * glb) as f64,
        d * (p.array_unit[i] * array) as f64,
    ]
}

/// Whether an array tile of `c2` channels and `m2` filters fits the replicas and register files:
/// `r` replicas on channels and `t` on filters with `r·t ≤ replicas`, each PE holding
/// `p·q` filter rows, `q` ifmap windows and `p` psums (`q = c2/r`, `p = m2/t`).
fn fits_array(p: &Problem, c2: usize, m2: usize) -> bool {
    let (rs, ts) = (divisors(c2), divisors(m2));
    rs.iter().any(|&r| {
        ts.iter().any(|&t| {
            let (q, pf) = (c2 / r, m2 / t);
            r * t <= p.replicas && pf * q * p.s + q * p.s + pf <= p.rf_words
        })
    })
}

/// Orders of one level that differ once trivial loops are dropped, per non-trivial mask.
fn distinct_orders(factors: &[usize; 3]) -> Vec<[Loop; 3]> {
    let key = |o: &[Loop; 3]| -> Vec<Loop> {
        o.iter()
            .copied()
            .filter(|&l| factors[l as usize] > 1)
            .collect()
    };
    let mut seen: Vec<Vec<Loop>> = Vec::new();
    let mut out = Vec::new();
    for o in ORDERS {
        let k = key(&o);
        if !seen.contains(&k) {
            seen.push(k);
            out.push(o);
        }
    }
    out
}

/// The cheapest blocking of `p`, or `None` when no blocking fits the buffer and register files.
pub(crate) fn search(p: &Problem) -> Option<(Blocking, f64)> {
    let [n, c, m] = p.dims;
    let (tn, tc, tm) = (triples(n), triples(c), triples(m));
    // Representative orders per mask of non-trivial loops (bit `l` set when loop `l` is).
    let reps: Vec<Vec<[Loop; 3]>> = (0..8usize)
        .map(|mask| distinct_orders(&[1, 2, 4].map(|bit| if mask & bit != 0 { 2 } else { 1 })))
        .collect();
    let mask = |f: &[usize; 3]| (0..3).filter(|&l| f[l] > 1).map(|l| 1 << l).sum::<usize>();
    // Array-tile feasibility per (channel, filter) divisor pair, computed once.
    let (dc, dm) = (divisors(c), divisors(m));
    let fits: Vec<Vec<bool>> = dc
        .iter()
        .map(|&c2| dm.iter().map(|&m2| fits_array(p, c2, m2)).collect())
        .collect();
    let position = |ds: &[usize], x: usize| ds.binary_search(&x).unwrap_or(0);
    let mut best: Option<(Blocking, f64)> = None;
    for fc in &tc {
        let row = &fits[position(&dc, fc[2])];
        for fm in &tm {
            if !row[position(&dm, fm[2])] {
                continue;
            }
            for fnn in &tn {
                let factors = [
                    [fnn[0], fc[0], fm[0]],
                    [fnn[1], fc[1], fm[1]],
                    [fnn[2], fc[2], fm[2]],
                ];
                let b = Blocking {
                    factors,
                    orders: [ORDERS[0], ORDERS[0]],
                };
                let words: usize = Operand::ALL
                    .iter()
                    .map(|&t| b.tile_units(t, 1) * p.unit[t as usize])
                    .sum();
                if words > p.glb_words {
                    continue;
                }
                for &o0 in &reps[mask(&factors[0])] {
                    let mut state0 = [(1, 1); 3];
                    let mut e0 = 0.0;
                    for t in Operand::ALL {
                        let i = t as usize;
                        state0[i] = walk((1, 1), &factors[0], &o0, t);
                        e0 += p.price[0][i] * dram_words(p, t, state0[i].0);
                    }
                    // On-chip terms only add: a DRAM cost at or above the incumbent cannot win.
                    if best.as_ref().is_some_and(|(_, be)| e0 >= *be) {
                        continue;
                    }
                    for &o1 in &reps[mask(&factors[1])] {
                        let mut e = e0;
                        for t in Operand::ALL {
                            let i = t as usize;
                            let f1 = walk(state0[i], &factors[1], &o1, t).0;
                            let [glb, array] = on_chip_words(p, t, f1);
                            e += p.price[1][i] * glb + p.price[2][i] * array;
                        }
                        if best.as_ref().is_none_or(|(_, be)| e < *be) {
                            let orders = [o0, o1];
                            best = Some((Blocking { factors, orders }, e));
                        }
                    }
                }
            }
        }
    }
    best
}
