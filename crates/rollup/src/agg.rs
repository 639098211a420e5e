//! The group table of one rollup window: raw batches in, one row per group out, with the
//! disclosure control applied (groups of fewer than `k` subjects merged into one `other`
//! row, or dropped when even that row stands for fewer than `k`).
//!
//! Distinct counts are exact up to [`EXACT_LIMIT`] values per group, then a HyperLogLog
//! sketch (cardinality-estimator, precision 14: about 0.8% standard error). `k` is at most
//! [`MAX_K`](crate::spec::MAX_K), far below the limit, so suppression always decides on exact
//! counts. Pseudonyms differ between key epochs, so a pseudonym column is counted per epoch
//! and reported as the largest count of any one epoch: a lower bound of the true number when a
//! window spans a key rotation, which keeps the `k` guarantee.

use std::collections::HashMap;
use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, StringBuilder, UInt8Builder, UInt16Builder, UInt32Builder,
    UInt64Builder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type};
use arrow_array::{Array, ArrayRef, RecordBatch, TimestampMicrosecondArray};
use arrow_schema::DataType;
use cardinality_estimator::CardinalityEstimator;
use foldhash::fast::FixedState;
use sketches_ddsketch::{Config, DDSketch};

use crate::RollupError;
use crate::spec::{Dim, DimType, Plan};

/// Distinct values per group counted exactly, before switching to a sketch.
pub const EXACT_LIMIT: usize = 4096;

/// The seed of value hashes: fixed, so a rebuild counts the same.
const SEED: u64 = 0x6c6f_6776_6569_6c31;

/// Values are hashed before they reach the estimator, so it never hashes again.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
}

type Hll = CardinalityEstimator<u64, Prehashed, 14, 6>;

/// The hasher of the exact sets: their values are hashes already, which only need mixing
/// (hashing them again with the seed that made them clusters them in the table).
#[derive(Default)]
struct Mixed(u64);

impl Hasher for Mixed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = mix(self.0 ^ u64::from(*b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = mix(v);
    }
}

type HashSetOfHashes = HashSet<u64, BuildHasherDefault<Mixed>>;

/// A full-avalanche finaliser (MurmurHash3's fmix64): the estimator takes its register index
/// and rank from different bits, which must all be well mixed.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// A distinct count: exact, then a sketch.
#[derive(Clone)]
enum Distinct {
    Exact(HashSetOfHashes),
    Sketch(Box<Hll>),
}

impl Default for Distinct {
    fn default() -> Self {
        Distinct::Exact(HashSetOfHashes::default())
    }
}

impl Distinct {
    fn insert(&mut self, h: u64) {
        match self {
            Distinct::Exact(s) => {
                s.insert(h);
                if s.len() > EXACT_LIMIT {
                    let mut e = Hll::new();
                    for x in s.iter() {
                        e.insert_hash(mix(*x));
                    }
                    *self = Distinct::Sketch(Box::new(e));
                }
            }
            Distinct::Sketch(e) => e.insert_hash(mix(h)),
        }
    }

    fn count(&self) -> u64 {
        match self {
            Distinct::Exact(s) => s.len() as u64,
            Distinct::Sketch(e) => e.estimate() as u64,
        }
    }

    fn merge(&mut self, other: &Distinct) {
        match other {
            Distinct::Exact(s) => s.iter().for_each(|h| self.insert(*h)),
            Distinct::Sketch(o) => {
                if let Distinct::Exact(s) = self {
                    let mut e = Hll::new();
                    s.iter().for_each(|h| e.insert_hash(mix(*h)));
                    *self = Distinct::Sketch(Box::new(e));
                }
                if let Distinct::Sketch(e) = self {
                    e.merge(o);
                }
            }
        }
    }
}

/// A distinct count per key epoch (one epoch for values that are not pseudonyms).
#[derive(Clone, Default)]
struct PerEpoch(Vec<(u16, Distinct)>);

impl PerEpoch {
    fn insert(&mut self, epoch: u16, h: u64) {
        match self.0.iter_mut().find(|(e, _)| *e == epoch) {
            Some((_, d)) => d.insert(h),
            None => {
                let mut d = Distinct::default();
                d.insert(h);
                self.0.push((epoch, d));
            }
        }
    }

    /// The largest count of one epoch.
    fn count(&self) -> u64 {
        self.0.iter().map(|(_, d)| d.count()).max().unwrap_or(0)
    }

    fn merge(&mut self, other: &PerEpoch) {
        for (epoch, d) in &other.0 {
            match self.0.iter_mut().find(|(e, _)| e == epoch) {
                Some((_, mine)) => mine.merge(d),
                None => self.0.push((*epoch, d.clone())),
            }
        }
    }
}

#[derive(Clone)]
struct Group {
    events: u64,
    subjects: PerEpoch,
    distinct: Vec<PerEpoch>,
    quantiles: Option<DDSketch>,
}

impl Group {
    fn new(plan: &Plan) -> Group {
        Group {
            events: 0,
            subjects: PerEpoch::default(),
            distinct: vec![PerEpoch::default(); plan.distinct.len()],
            quantiles: plan.quantiles.map(|_| DDSketch::new(Config::defaults())),
        }
    }

    fn merge(&mut self, o: &Group) {
        self.events += o.events;
        self.subjects.merge(&o.subjects);
        for (a, b) in self.distinct.iter_mut().zip(&o.distinct) {
            a.merge(b);
        }
        if let (Some(a), Some(b)) = (&mut self.quantiles, &o.quantiles) {
            // Sketches of one configuration always merge.
            let _ = a.merge(b);
        }
    }
}

/// One window's groups.
pub struct Table<'p> {
    plan: &'p Plan,
    index: HashMap<Box<[u8]>, u32, FixedState>,
    groups: Vec<(Box<[u8]>, Group)>,
    /// Key ids seen, in order: a row's epoch is the index of its key id.
    epochs: Vec<String>,
    hasher: FixedState,
    key: Vec<u8>,
    pub rows: u64,
    pub rows_without_consent: u64,
}

/// The columns of one batch, in the plan's `read` order (`None`: the file lacks it).
pub type Columns = Vec<Option<ArrayRef>>;

fn status_class(s: u16) -> Option<&'static str> {
    Some(match s {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => return None,
    })
}

/// Group keys are memcomparable: byte order is the order of the values (nulls first, text
/// lexicographic, numbers ascending), so sorting keys orders the rows.
fn push_str(key: &mut Vec<u8>, v: Option<&str>) {
    match v {
        None => key.push(0),
        Some(s) => {
            key.push(1);
            for &b in s.as_bytes() {
                if b == 0 {
                    key.extend_from_slice(&[0, 0xff]);
                } else {
                    key.push(b);
                }
            }
            key.extend_from_slice(&[0, 0]);
        }
    }
}

fn push_uint(key: &mut Vec<u8>, v: Option<u32>) {
    match v {
        None => key.push(0),
        Some(n) => {
            key.push(1);
            key.extend_from_slice(&n.to_be_bytes());
        }
    }
}

fn type_error(plan: &Plan, input: usize, a: &dyn Array) -> RollupError {
    RollupError::Definition {
        rollup: plan.spec.name.clone(),
        what: format!(
            "column {:?} of dataset {:?} has type {} in a file, which this rollup cannot read",
            plan.read[input],
            plan.spec.source,
            a.data_type()
        ),
    }
}

impl<'p> Table<'p> {
    pub fn new(plan: &'p Plan) -> Table<'p> {
        Table {
            plan,
            index: HashMap::with_hasher(FixedState::with_seed(SEED)),
            groups: Vec::new(),
            epochs: Vec::new(),
            hasher: FixedState::with_seed(SEED),
            key: Vec::with_capacity(256),
            rows: 0,
            rows_without_consent: 0,
        }
    }

    fn epoch(&mut self, key_id: &str) -> u16 {
        match self.epochs.iter().position(|k| k == key_id) {
            Some(i) => i as u16,
            None => {
                self.epochs.push(key_id.to_string());
                (self.epochs.len() - 1).min(u16::MAX as usize) as u16
            }
        }
    }

    /// Adds one batch of raw rows.
    pub fn add(&mut self, cols: &Columns) -> Result<(), RollupError> {
        let plan = self.plan;
        let Some(n) = cols.iter().flatten().map(|c| c.len()).next() else {
            return Ok(());
        };
        let strs = |i: usize| -> Result<Option<&arrow_array::StringArray>, RollupError> {
            match &cols[i] {
                None => Ok(None),
                Some(a) => a
                    .as_string_opt::<i32>()
                    .map(Some)
                    .ok_or_else(|| type_error(plan, i, a.as_ref())),
            }
        };
        let key_ids = strs(plan.key_id)?;
        let consent = match plan.consent.and_then(|i| cols[i].as_ref().map(|a| (i, a))) {
            None => None,
            Some((i, a)) => Some(
                a.as_boolean_opt()
                    .ok_or_else(|| type_error(plan, i, a.as_ref()))?,
            ),
        };
        let subject = strs(plan.subject.input)?;
        let distinct: Vec<Option<&arrow_array::StringArray>> = plan
            .distinct
            .iter()
            .map(|d| strs(d.input))
            .collect::<Result<_, _>>()?;
        // Dimension columns, checked once per batch.
        for d in &plan.dims {
            let (input, want) = match d {
                Dim::Column { input, ty } => (*input, ty.data_type()),
                Dim::StatusClass { input } => (*input, DataType::UInt16),
                Dim::IpFamily { input } => (*input, DataType::Utf8),
            };
            if let Some(a) = &cols[input]
                && a.data_type() != &want
            {
                return Err(type_error(plan, input, a.as_ref()));
            }
        }
        let quant: Option<&ArrayRef> = plan.quantiles.and_then(|(i, _)| cols[i].as_ref());
        let mut last_key: Option<(usize, u16)> = None;
        for row in 0..n {
            if let Some(c) = consent
                && !(c.is_valid(row) && c.value(row))
            {
                self.rows_without_consent += 1;
                continue;
            }
            self.rows += 1;
            // Epoch of the row's key id (one per file in practice).
            let epoch = match key_ids {
                Some(k) if k.is_valid(row) => {
                    let v = k.value(row);
                    match last_key {
                        Some((r, e)) if k.value(r) == v => e,
                        _ => {
                            let e = self.epoch(v);
                            last_key = Some((row, e));
                            e
                        }
                    }
                }
                _ => 0,
            };
            self.key.clear();
            for d in &plan.dims {
                match d {
                    Dim::Column { input, ty } => {
                        let Some(a) = &cols[*input] else {
                            self.key.push(0);
                            continue;
                        };
                        if a.is_null(row) {
                            self.key.push(0);
                            continue;
                        }
                        match ty {
                            DimType::Utf8 => {
                                push_str(&mut self.key, Some(a.as_string::<i32>().value(row)))
                            }
                            DimType::UInt8 => push_uint(
                                &mut self.key,
                                Some(u32::from(a.as_primitive::<UInt8Type>().value(row))),
                            ),
                            DimType::UInt16 => push_uint(
                                &mut self.key,
                                Some(u32::from(a.as_primitive::<UInt16Type>().value(row))),
                            ),
                            DimType::UInt32 => push_uint(
                                &mut self.key,
                                Some(a.as_primitive::<UInt32Type>().value(row)),
                            ),
                            DimType::Boolean => {
                                push_uint(&mut self.key, Some(u32::from(a.as_boolean().value(row))))
                            }
                        }
                    }
                    Dim::StatusClass { input } => {
                        let v = cols[*input]
                            .as_ref()
                            .filter(|a| a.is_valid(row))
                            .and_then(|a| status_class(a.as_primitive::<UInt16Type>().value(row)));
                        push_str(&mut self.key, v);
                    }
                    Dim::IpFamily { input } => {
                        let v = cols[*input].as_ref().filter(|a| a.is_valid(row)).map(|a| {
                            if a.as_string::<i32>().value(row).contains(':') {
                                "ipv6"
                            } else {
                                "ipv4"
                            }
                        });
                        push_str(&mut self.key, v);
                    }
                }
            }
            let g = match self.index.get(self.key.as_slice()) {
                Some(i) => *i as usize,
                None => {
                    let i = self.groups.len();
                    let key: Box<[u8]> = self.key.as_slice().into();
                    self.index.insert(key.clone(), i as u32);
                    self.groups.push((key, Group::new(plan)));
                    i
                }
            };
            let hasher = &self.hasher;
            let group = &mut self.groups[g].1;
            group.events += 1;
            if let Some(s) = subject
                && s.is_valid(row)
            {
                group
                    .subjects
                    .insert(epoch, hasher.hash_one(s.value(row).as_bytes()));
            }
            for ((d, col), counted) in group.distinct.iter_mut().zip(&distinct).zip(&plan.distinct)
            {
                if let Some(c) = col
                    && c.is_valid(row)
                {
                    let e = if counted.pseudonym { epoch } else { 0 };
                    d.insert(e, hasher.hash_one(c.value(row).as_bytes()));
                }
            }
            if let (Some(sk), Some(a)) = (&mut group.quantiles, quant)
                && a.is_valid(row)
            {
                let v = match a.data_type() {
                    DataType::UInt16 => f64::from(a.as_primitive::<UInt16Type>().value(row)),
                    DataType::UInt32 => f64::from(a.as_primitive::<UInt32Type>().value(row)),
                    DataType::UInt64 => a.as_primitive::<UInt64Type>().value(row) as f64,
                    DataType::Float64 => a.as_primitive::<Float64Type>().value(row),
                    _ => return Err(type_error(plan, plan.quantiles.expect("set").0, a.as_ref())),
                };
                if v.is_finite() && v >= 0.0 {
                    sk.add(v);
                }
            }
        }
        Ok(())
    }

    /// Adds another table of the same plan (the same window, other files).
    pub fn absorb(&mut self, other: Table<'p>) {
        let plan = self.plan;
        // Epochs are numbered per table: renumber the other's into this one's.
        let remap: Vec<u16> = other.epochs.iter().map(|k| self.epoch(k)).collect();
        let renumber = |p: &mut PerEpoch| {
            for (e, _) in &mut p.0 {
                *e = remap.get(usize::from(*e)).copied().unwrap_or(*e);
            }
        };
        for (key, mut g) in other.groups {
            renumber(&mut g.subjects);
            for (d, counted) in g.distinct.iter_mut().zip(&plan.distinct) {
                if counted.pseudonym {
                    renumber(d);
                }
            }
            match self.index.get(&key) {
                Some(i) => self.groups[*i as usize].1.merge(&g),
                None => {
                    self.index.insert(key.clone(), self.groups.len() as u32);
                    self.groups.push((key, g));
                }
            }
        }
        self.rows += other.rows;
        self.rows_without_consent += other.rows_without_consent;
    }

    /// Applies the disclosure control and builds the window's rows, ordered by group.
    pub fn finish(self, window_start: i64) -> Result<Outcome, RollupError> {
        let plan = self.plan;
        let k = u64::from(plan.spec.k);
        let mut groups = self.groups;
        groups.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut other = Group::new(plan);
        let mut out = Outcome::default();
        let mut published: Vec<(Option<&[u8]>, &Group)> = Vec::new();
        for (key, g) in &groups {
            if g.subjects.count() >= k {
                published.push((Some(key), g));
            } else {
                out.groups_suppressed += 1;
                other.merge(g);
            }
        }
        out.groups = published.len() as u64;
        if other.events > 0 {
            if other.subjects.count() >= k {
                out.other_row = true;
                published.push((None, &other));
            } else {
                out.events_suppressed = other.events;
            }
        }
        out.batch = Some(build_batch(plan, window_start, &published)?);
        Ok(out)
    }
}

/// What [`Table::finish`] made.
#[derive(Default)]
pub struct Outcome {
    pub batch: Option<RecordBatch>,
    pub groups: u64,
    pub groups_suppressed: u64,
    pub other_row: bool,
    pub events_suppressed: u64,
}

/// Reads one encoded key value (`None` for null), advancing `pos`.
fn take(key: &[u8], pos: &mut usize, ty: DimType) -> Option<Vec<u8>> {
    let tag = key[*pos];
    *pos += 1;
    if tag == 0 {
        return None;
    }
    if ty != DimType::Utf8 {
        let v = key[*pos..*pos + 4].to_vec();
        *pos += 4;
        return Some(v);
    }
    let mut v = Vec::new();
    loop {
        match (key[*pos], key.get(*pos + 1)) {
            (0, Some(0)) => {
                *pos += 2;
                return Some(v);
            }
            (0, _) => {
                v.push(0);
                *pos += 2;
            }
            (b, _) => {
                v.push(b);
                *pos += 1;
            }
        }
    }
}

fn build_batch(
    plan: &Plan,
    window_start: i64,
    rows: &[(Option<&[u8]>, &Group)],
) -> Result<RecordBatch, RollupError> {
    let n = rows.len();
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(plan.schema.fields().len());
    cols.push(Arc::new(
        TimestampMicrosecondArray::from(vec![window_start; n]).with_timezone("UTC"),
    ));
    let mut positions = vec![0usize; n];
    for d in &plan.dims {
        let ty = d.ty();
        let vals: Vec<Option<Vec<u8>>> = rows
            .iter()
            .zip(positions.iter_mut())
            .map(|((key, _), pos)| key.and_then(|k| take(k, pos, ty)))
            .collect();
        let u = |v: &Vec<u8>| u32::from_be_bytes(v.as_slice().try_into().expect("4 bytes"));
        let col: ArrayRef = match ty {
            DimType::Utf8 => {
                let mut b = StringBuilder::new();
                for v in &vals {
                    b.append_option(
                        v.as_ref()
                            .map(|v| std::str::from_utf8(v).expect("keys hold UTF-8")),
                    );
                }
                Arc::new(b.finish())
            }
            DimType::UInt8 => {
                let mut b = UInt8Builder::new();
                vals.iter()
                    .for_each(|v| b.append_option(v.as_ref().map(|v| u(v) as u8)));
                Arc::new(b.finish())
            }
            DimType::UInt16 => {
                let mut b = UInt16Builder::new();
                vals.iter()
                    .for_each(|v| b.append_option(v.as_ref().map(|v| u(v) as u16)));
                Arc::new(b.finish())
            }
            DimType::UInt32 => {
                let mut b = UInt32Builder::new();
                vals.iter().for_each(|v| b.append_option(v.as_ref().map(u)));
                Arc::new(b.finish())
            }
            DimType::Boolean => {
                let mut b = BooleanBuilder::new();
                vals.iter()
                    .for_each(|v| b.append_option(v.as_ref().map(|v| u(v) != 0)));
                Arc::new(b.finish())
            }
        };
        cols.push(col);
    }
    let mut other = BooleanBuilder::new();
    let mut events = UInt64Builder::new();
    let mut subjects = UInt64Builder::new();
    for (key, g) in rows {
        other.append_value(key.is_none());
        events.append_value(g.events);
        subjects.append_value(g.subjects.count());
    }
    cols.push(Arc::new(other.finish()));
    cols.push(Arc::new(events.finish()));
    cols.push(Arc::new(subjects.finish()));
    for i in 0..plan.distinct.len() {
        let mut b = UInt64Builder::new();
        rows.iter()
            .for_each(|(_, g)| b.append_value(g.distinct[i].count()));
        cols.push(Arc::new(b.finish()));
    }
    if plan.quantiles.is_some() {
        for q in [0.5, 0.9, 0.99] {
            let mut b = Float64Builder::new();
            for (_, g) in rows {
                let v = g
                    .quantiles
                    .as_ref()
                    .and_then(|s| s.quantile(q).ok().flatten());
                b.append_option(v);
            }
            cols.push(Arc::new(b.finish()));
        }
    }
    RecordBatch::try_new(plan.schema.clone(), cols).map_err(|source| RollupError::Arrow {
        rollup: plan.spec.name.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{RollupSpec, Window};
    use arrow_array::cast::AsArray;
    use arrow_array::{BooleanArray, StringArray};
    use logveil_model::DatasetKind;

    fn plan(group_by: &[&str], k: u32) -> Plan {
        let spec = RollupSpec {
            name: "views".into(),
            source: "session".into(),
            window: Window::Hour,
            group_by: group_by.iter().map(|s| s.to_string()).collect(),
            subject: "device_pseudonym".into(),
            distinct: vec!["session_pseudonym".into()],
            quantiles: Some("duration_ms".into()),
            k,
            retention_days: 730,
        };
        Plan::new(&spec, &DatasetKind::Session.schema()).unwrap()
    }

    /// Rows of (page, device, session, key id, consent).
    fn batch(p: &Plan, rows: &[(&str, &str, &str, &str, bool)]) -> Columns {
        p.read
            .iter()
            .map(|name| {
                let a: ArrayRef = match name.as_str() {
                    "page" => Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
                    "device_pseudonym" => {
                        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1)))
                    }
                    "session_pseudonym" => {
                        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2)))
                    }
                    "key_id" => Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.3))),
                    "consent_statistics" => {
                        Arc::new(BooleanArray::from_iter(rows.iter().map(|r| Some(r.4))))
                    }
                    "duration_ms" => Arc::new(arrow_array::UInt64Array::from_iter_values(
                        rows.iter().map(|_| 100),
                    )),
                    "locale" => Arc::new(StringArray::from(vec![None::<&str>; rows.len()])),
                    other => panic!("unexpected column {other}"),
                };
                Some(a)
            })
            .collect()
    }

    fn pages(o: &Outcome) -> Vec<(Option<String>, u64, u64, bool)> {
        let b = o.batch.as_ref().unwrap();
        let page = b.column_by_name("page").unwrap().as_string::<i32>();
        let events = b
            .column_by_name("events")
            .unwrap()
            .as_primitive::<UInt64Type>();
        let subjects = b
            .column_by_name("subjects")
            .unwrap()
            .as_primitive::<UInt64Type>();
        let other = b.column_by_name("other").unwrap().as_boolean();
        (0..b.num_rows())
            .map(|i| {
                (
                    page.is_valid(i).then(|| page.value(i).to_string()),
                    events.value(i),
                    subjects.value(i),
                    other.value(i),
                )
            })
            .collect()
    }

    #[test]
    fn small_groups_go_to_other_and_a_small_other_is_dropped() {
        let p = plan(&["page"], 3);
        let mut t = Table::new(&p);
        let mut rows = Vec::new();
        // /a: 3 devices (published); /b: 2 devices, /c: 1 device (merged: 3 → other row).
        for d in ["d1", "d2", "d3"] {
            rows.push(("/a", d, "s", "k1", true));
        }
        rows.push(("/b", "d4", "s", "k1", true));
        rows.push(("/b", "d5", "s", "k1", true));
        rows.push(("/c", "d6", "s", "k1", true));
        rows.push(("/c", "d6", "s", "k1", true));
        // No consent: not counted at all.
        rows.push(("/z", "d9", "s", "k1", false));
        t.add(&batch(&p, &rows)).unwrap();
        assert_eq!(t.rows_without_consent, 1);
        let o = t.finish(0).unwrap();
        assert_eq!(
            pages(&o),
            [(Some("/a".into()), 3, 3, false), (None, 4, 3, true)]
        );
        assert_eq!(
            (o.groups, o.groups_suppressed, o.events_suppressed),
            (1, 2, 0)
        );

        // With k = 7 no group reaches it, and the other row (6 devices) is dropped too.
        let p = plan(&["page"], 7);
        let mut t = Table::new(&p);
        t.add(&batch(&p, &rows)).unwrap();
        let o = t.finish(0).unwrap();
        assert!(pages(&o).is_empty());
        assert_eq!(
            (o.groups, o.groups_suppressed, o.events_suppressed),
            (0, 3, 7)
        );
    }

    #[test]
    fn pseudonyms_of_two_epochs_count_as_the_larger_epoch() {
        let p = plan(&["page"], 2);
        let mut t = Table::new(&p);
        // The same two devices under two keys look like four pseudonyms.
        t.add(&batch(
            &p,
            &[
                ("/a", "x1", "s", "k1", true),
                ("/a", "x2", "s", "k1", true),
                ("/a", "y1", "s", "k2", true),
                ("/a", "y2", "s", "k2", true),
                ("/a", "y3", "s", "k2", true),
            ],
        ))
        .unwrap();
        assert_eq!(
            pages(&t.finish(0).unwrap()),
            [(Some("/a".into()), 5, 3, false)]
        );
    }

    #[test]
    fn tables_of_parts_merge_into_the_table_of_the_whole() {
        let p = plan(&["page"], 2);
        let rows = [
            ("/a", "x1", "s1", "k1", true),
            ("/a", "x2", "s2", "k2", true),
            ("/b", "x1", "s1", "k1", true),
            ("/a", "x3", "s3", "k2", true),
            ("/b", "x4", "s1", "k1", true),
            ("/a", "x1", "s9", "k1", false),
        ];
        let mut whole = Table::new(&p);
        whole.add(&batch(&p, &rows)).unwrap();
        let mut a = Table::new(&p);
        a.add(&batch(&p, &rows[..2])).unwrap();
        // The second part sees key k2 first: its epochs are numbered the other way round.
        let mut b = Table::new(&p);
        b.add(&batch(&p, &[rows[3], rows[2], rows[4], rows[5]]))
            .unwrap();
        a.absorb(b);
        assert_eq!((a.rows, a.rows_without_consent), (5, 1));
        let (w, m) = (whole.finish(0).unwrap(), a.finish(0).unwrap());
        assert_eq!(pages(&w), pages(&m));
        assert_eq!(
            pages(&w),
            [
                (Some("/a".into()), 3, 2, false),
                (Some("/b".into()), 2, 2, false)
            ]
        );
    }

    #[test]
    fn distinct_counts_are_exact_then_within_the_sketch_error() {
        let mut d = Distinct::default();
        let h = FixedState::with_seed(SEED);
        for i in 0..EXACT_LIMIT as u64 {
            d.insert(h.hash_one(i));
            d.insert(h.hash_one(i));
        }
        assert_eq!(d.count(), EXACT_LIMIT as u64);
        for i in 0..100_000u64 {
            d.insert(h.hash_one(i));
        }
        let n = d.count() as f64;
        assert!((n - 100_000.0).abs() / 100_000.0 < 0.03, "{n}");
        let mut small = Distinct::default();
        small.insert(h.hash_one(7u64));
        small.merge(&d);
        assert!((small.count() as f64 - 100_000.0).abs() / 100_000.0 < 0.03);
    }

    #[test]
    fn keys_are_ordered_and_decoded_with_nulls() {
        let p = plan(&["page", "locale"], 1);
        let mut t = Table::new(&p);
        t.add(&batch(
            &p,
            &[
                ("/b", "d", "s", "k", true),
                ("/a\0z", "d", "s", "k", true),
                ("/aa", "d", "s", "k", true),
            ],
        ))
        .unwrap();
        let o = t.finish(3_600_000_000).unwrap();
        let b = o.batch.unwrap();
        let page = b.column_by_name("page").unwrap().as_string::<i32>();
        let got: Vec<&str> = (0..3).map(|i| page.value(i)).collect();
        assert_eq!(got, ["/a\0z", "/aa", "/b"]);
        let locale = b.column_by_name("locale").unwrap().as_string::<i32>();
        assert!((0..3).all(|i| locale.is_null(i)));
        let q = b
            .column_by_name("duration_ms_p50")
            .unwrap()
            .as_primitive::<Float64Type>();
        assert!((q.value(0) - 100.0).abs() <= 1.0, "{}", q.value(0));
    }
}
