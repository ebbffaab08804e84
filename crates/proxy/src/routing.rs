//! Which version a request goes to: the weight table, stable key hashing into buckets,
//! and the weighted rotation used when a request has no key.
//!
//! The bucket space is `0..10_000` (one bucket is 0.01 %). A version with weight `w` %
//! owns `w × 100` consecutive buckets. The ranges are laid out from bucket 0 in a fixed
//! order: every group except the first, in configured order, then the first group (the
//! baseline) takes the rest. With `stable` first and `canary` second, the canary owns
//! `0..w×100`: raising its weight only adds buckets, so a user already on the canary stays
//! there; lowering it to 0 sends everyone back to stable.

use std::collections::BTreeMap;

use crate::Error;

/// Size of the bucket space: weights are percent, so one percent is 100 buckets.
pub const BUCKETS: u32 = 10_000;

/// FNV-1a, 64 bit: stable across runs, processes and machines (no random seed), so a
/// user lands in the same bucket on every router instance and after restarts.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // FNV's low bits mix poorly for short keys that differ in their last byte; fold the
    // high half in before taking the remainder.
    hash ^ (hash >> 32)
}

/// The bucket (`0..BUCKETS`) of a bucketing key.
pub fn bucket_of_key(key: &[u8]) -> u32 {
    (stable_hash(key) % u64::from(BUCKETS)) as u32
}

/// The bucket for the n-th keyless request: a fixed permutation of each run of 10 000
/// consecutive requests, so the split is exact per 10 000 requests and the versions are
/// interleaved instead of served in long runs. 7919 is prime and coprime with 10 000.
pub fn bucket_of_sequence(n: u64) -> u32 {
    ((n % u64::from(BUCKETS)) * 7919 % u64::from(BUCKETS)) as u32
}

/// An immutable weight table; a new one replaces the old one in one pointer swap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightTable {
    /// Every configured version with its weight (0 included): the read-back.
    weights: BTreeMap<String, u32>,
    /// `(end, group index)` in layout order; a bucket `b` goes to the first range with
    /// `b < end`. Groups with weight 0 have no range.
    ranges: Vec<(u32, usize)>,
}

impl WeightTable {
    /// Builds a table for `versions` (configured order, baseline first) from `wanted`.
    /// Weights are percent and must sum to 100; versions not named get 0.
    pub fn new(versions: &[String], wanted: &BTreeMap<String, u32>) -> Result<Self, Error> {
        for name in wanted.keys() {
            if !versions.contains(name) {
                return Err(Error::Weights(format!(
                    "no backend group for version {name:?}; known versions: {}",
                    versions.join(", ")
                )));
            }
        }
        let total: u64 = wanted.values().map(|w| u64::from(*w)).sum();
        if total != 100 {
            return Err(Error::Weights(format!(
                "weights must sum to 100 (percent), these sum to {total}: {wanted:?}"
            )));
        }
        let weight_of = |index: usize| wanted.get(&versions[index]).copied().unwrap_or(0);
        let mut ranges = Vec::with_capacity(versions.len());
        let mut end = 0;
        for index in (1..versions.len()).chain([0]) {
            let weight = weight_of(index);
            if weight > 0 {
                end += weight * (BUCKETS / 100);
                ranges.push((end, index));
            }
        }
        let weights = versions
            .iter()
            .enumerate()
            .map(|(index, name)| (name.clone(), weight_of(index)))
            .collect();
        Ok(WeightTable { weights, ranges })
    }

    /// Every configured version with its weight in force, zeros included.
    pub fn weights(&self) -> &BTreeMap<String, u32> {
        &self.weights
    }

    /// The group index that owns `bucket`.
    #[inline]
    pub fn group_for_bucket(&self, bucket: u32) -> usize {
        for &(end, group) in &self.ranges {
            if bucket < end {
                return group;
            }
        }
        // The ranges end at BUCKETS because the weights sum to 100, so this is only
        // reached for a bucket outside 0..BUCKETS; give it the last range.
        self.ranges.last().map_or(0, |&(_, group)| group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn weights(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn the_hash_is_fixed_forever() {
        // Changing these moves users between versions on upgrade: never change them.
        assert_eq!(bucket_of_key(b"user-1"), bucket_of_key(b"user-1"));
        assert_eq!(stable_hash(b""), 0xcbf2_9ce4_8422_2325 ^ 0xcbf2_9ce4);
        let buckets: Vec<u32> = ["alice", "bob", "carol"]
            .iter()
            .map(|k| bucket_of_key(k.as_bytes()))
            .collect();
        assert_eq!(buckets, [2556, 7581, 7353]);
    }

    #[test]
    fn canary_range_grows_from_zero_so_users_stay() {
        let names = versions(&["stable", "canary"]);
        let mut on_canary_before = Vec::new();
        for weight in [5, 25, 50, 75, 100] {
            let table = WeightTable::new(
                &names,
                &weights(&[("stable", 100 - weight), ("canary", weight)]),
            )
            .unwrap();
            let on_canary: Vec<u32> = (0..10_000u32)
                .filter(|user| table.group_for_bucket(bucket_of_key(&user.to_le_bytes())) == 1)
                .collect();
            assert!(on_canary_before.iter().all(|u| on_canary.contains(u)));
            let share = on_canary.len() as f64 / 100.0;
            assert!((share - weight as f64).abs() < 2.0, "{share} vs {weight}");
            on_canary_before = on_canary;
        }
        let rolled_back =
            WeightTable::new(&names, &weights(&[("stable", 100), ("canary", 0)])).unwrap();
        assert!((0..BUCKETS).all(|b| rolled_back.group_for_bucket(b) == 0));
    }

    #[test]
    fn three_groups_get_cumulative_ranges_and_zeros_are_read_back() {
        let names = versions(&["stable", "a", "b"]);
        let table = WeightTable::new(&names, &weights(&[("stable", 50), ("b", 50)])).unwrap();
        assert_eq!(
            table.weights(),
            &weights(&[("a", 0), ("b", 50), ("stable", 50)])
        );
        assert_eq!(table.group_for_bucket(0), 2);
        assert_eq!(table.group_for_bucket(4999), 2);
        assert_eq!(table.group_for_bucket(5000), 0);
        assert_eq!(table.group_for_bucket(9999), 0);
    }

    #[test]
    fn bad_weights_are_refused_with_the_reason() {
        let names = versions(&["stable", "canary"]);
        let error = WeightTable::new(&names, &weights(&[("stable", 90)]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("sum to 100"), "{error}");
        let error = WeightTable::new(&names, &weights(&[("green", 100)]))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("green") && error.contains("stable, canary"),
            "{error}"
        );
    }

    #[test]
    fn keyless_sequence_is_an_exact_interleaved_split() {
        let names = versions(&["stable", "canary"]);
        let table = WeightTable::new(&names, &weights(&[("stable", 95), ("canary", 5)])).unwrap();
        let picks: Vec<usize> = (0..10_000)
            .map(|n| table.group_for_bucket(bucket_of_sequence(n)))
            .collect();
        assert_eq!(picks.iter().filter(|g| **g == 1).count(), 500);
        // Interleaved: within every 100 consecutive requests the canary gets some.
        for chunk in picks.chunks(100) {
            let canary = chunk.iter().filter(|g| **g == 1).count();
            assert!((2..=8).contains(&canary), "{canary} of 100");
        }
    }
}
