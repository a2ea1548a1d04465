//! MRC's fast path caches, per module, everything upstream of the module. Every module's
//! prefix is a part of the same frozen network at the AT weights, so the walk through it
//! is shared: modules scored in forward order advance one set of boundary activations
//! block by block (each block computed once per MRC run) instead of each recomputing its
//! whole prefix from the input — the same tensors, batch by batch, so the same values.
use crate::engine::models::{Model, ModelError};
use crate::engine::rift::mrc::adv_set::TensorSet;
use tch::Tensor;

/// Boundary activations of the whole set, kept between modules.
#[derive(Default)]
pub struct PrefixWalk {
    /// The boundary they are at (`Model::prefix_boundary`) and the activations, in batches
    /// as they were computed; None: at the raw input (the set itself).
    at: Option<(usize, Vec<Tensor>)>,
}

impl PrefixWalk {
    /// `module`'s cache over the whole set, computed in batches of `batch` samples. With
    /// `keep` the walk stays at the module's boundary for the next module (holding one
    /// more set of activations); without, it computes the cache from where it is and
    /// keeps nothing new (for a cache budget that leaves no room for the boundary).
    pub fn cache_for(
        &mut self,
        model: &Model,
        adv: &TensorSet,
        module: &str,
        batch: usize,
        keep: bool,
    ) -> Result<Vec<Tensor>, ModelError> {
        let to = model.prefix_boundary(module)?;
        if self.at.as_ref().is_some_and(|(b, _)| *b > to) {
            // A module earlier than the last: walk again from the input.
            self.at = None;
        }
        let (from, starts) = match &self.at {
            Some((b, acts)) => (*b, acts.iter().map(Tensor::shallow_clone).collect()),
            None => (0, batches(&adv.x, adv.n, batch)?),
        };
        let mut boundary = Vec::with_capacity(starts.len());
        let mut parts: Vec<Vec<Tensor>> = Vec::new();
        for start in &starts {
            let at = model.advance_prefix(start, from, to);
            let cache = model.prefix_cache_at(&at, module)?;
            if parts.is_empty() {
                parts = cache.iter().map(|_| Vec::new()).collect();
            }
            for (p, t) in parts.iter_mut().zip(cache) {
                p.push(t);
            }
            if keep && to > 0 {
                boundary.push(at);
            }
        }
        if keep && to > 0 {
            self.at = Some((to, boundary));
        }
        parts
            .iter()
            .map(|p| Tensor::f_cat(p, 0).map_err(ModelError::from))
            .collect()
    }

    /// Bytes per sample the walk would hold at `module`'s boundary (0 at the input).
    pub fn boundary_bytes_per_sample(
        model: &Model,
        adv: &TensorSet,
        module: &str,
    ) -> Result<usize, ModelError> {
        let to = model.prefix_boundary(module)?;
        if to == 0 {
            return Ok(0);
        }
        let one = model.advance_prefix(&adv.x.f_narrow(0, 0, 1)?, 0, to);
        Ok(one.numel() * one.kind().elt_size_in_bytes())
    }
}

/// The set's samples in consecutive batches of `batch` (views, no copies).
fn batches(x: &Tensor, n: usize, batch: usize) -> Result<Vec<Tensor>, ModelError> {
    let batch = batch.max(1);
    (0..n)
        .step_by(batch)
        .map(|i| Ok(x.f_narrow(0, i as i64, batch.min(n - i) as i64)?))
        .collect()
}
