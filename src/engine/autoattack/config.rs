//! What an AutoAttack run is asked to do: its attacks, their budgets, and its errors. A
//! leaf, so the session, events and final-evaluation records can name these types without
//! depending on the attacks themselves.
use crate::engine::attack::{AttackError, PgdConfig};
use crate::engine::norms::Norm;
use serde::{Deserialize, Serialize};

/// One attack of the ensemble.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttackKind {
    ApgdCe,
    ApgdDlr,
    ApgdT,
    /// Untargeted FAB (the plus version's), towards the closest linearised boundary.
    Fab,
    FabT,
    Square,
    Pgd,
}

/// The standard version's attacks, in the published order.
pub const STANDARD: [AttackKind; 4] = [
    AttackKind::ApgdCe,
    AttackKind::ApgdT,
    AttackKind::FabT,
    AttackKind::Square,
];

/// The plus version's attacks, in the reference's order (`_set_version('plus')`).
pub const PLUS: [AttackKind; 6] = [
    AttackKind::ApgdCe,
    AttackKind::ApgdDlr,
    AttackKind::Fab,
    AttackKind::Square,
    AttackKind::ApgdT,
    AttackKind::FabT,
];

/// The rand version's attacks (for randomised defences, with EOT).
pub const RAND: [AttackKind; 2] = [AttackKind::ApgdCe, AttackKind::ApgdDlr];

/// AutoAttack's versions, as the reference's `_set_version` defines them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AaVersion {
    /// APGD-CE, APGD-T, FAB-T, Square; one restart each.
    #[default]
    Standard,
    /// APGD-CE and APGD-DLR with 5 restarts, FAB with 5 restarts, Square (5,000 queries,
    /// one run as the reference's code has it), then APGD-T and FAB-T.
    Plus,
    /// APGD-CE and APGD-DLR with EOT over 20 gradient samples, for randomised defences.
    Rand,
}

impl AaVersion {
    pub fn parse(s: &str) -> Result<AaVersion, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "standard" => Ok(AaVersion::Standard),
            "plus" => Ok(AaVersion::Plus),
            "rand" => Ok(AaVersion::Rand),
            other => Err(format!(
                "unknown AutoAttack version `{other}`; expected standard, plus or rand"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AaVersion::Standard => "standard",
            AaVersion::Plus => "plus",
            AaVersion::Rand => "rand",
        }
    }

    /// The version's attacks, in order.
    pub fn attacks(self) -> Vec<AttackKind> {
        match self {
            AaVersion::Standard => STANDARD.to_vec(),
            AaVersion::Plus => PLUS.to_vec(),
            AaVersion::Rand => RAND.to_vec(),
        }
    }
}

fn one() -> usize {
    1
}

impl AttackKind {
    pub const ALL: [AttackKind; 7] = [
        AttackKind::ApgdCe,
        AttackKind::ApgdDlr,
        AttackKind::ApgdT,
        AttackKind::Fab,
        AttackKind::FabT,
        AttackKind::Square,
        AttackKind::Pgd,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AttackKind::ApgdCe => "apgd-ce",
            AttackKind::ApgdDlr => "apgd-dlr",
            AttackKind::ApgdT => "apgd-t",
            AttackKind::Fab => "fab",
            AttackKind::FabT => "fab-t",
            AttackKind::Square => "square",
            AttackKind::Pgd => "pgd",
        }
    }

    /// Salt of the attack's random streams, so two attacks never share a start.
    pub(crate) fn salt(self) -> u64 {
        match self {
            AttackKind::ApgdCe => 0x4150_4345,
            AttackKind::ApgdDlr => 0x4150_444C,
            AttackKind::ApgdT => 0x4150_5400,
            AttackKind::Fab => 0x4641_4200,
            AttackKind::FabT => 0x4641_4254,
            AttackKind::Square => 0x5351_5541,
            AttackKind::Pgd => 0x5047_4400,
        }
    }

    /// `autoattack` (the standard version) or a comma-separated list of attack names.
    pub fn parse_list(text: &str) -> Result<Vec<AttackKind>, AaError> {
        let text = text.trim().to_ascii_lowercase();
        if text == "autoattack" || text == "standard" {
            return Ok(STANDARD.to_vec());
        }
        let mut out = Vec::new();
        for part in text.split(',').map(str::trim) {
            let kind = AttackKind::ALL
                .into_iter()
                .find(|k| k.name() == part)
                .ok_or_else(|| {
                    AaError::Config(format!(
                        "unknown attack `{part}`; expected autoattack, none, or a comma-separated list of {}",
                        AttackKind::ALL.map(|k| k.name()).join(", ")
                    ))
                })?;
            if out.contains(&kind) {
                return Err(AaError::Config(format!(
                    "attack `{part}` is listed twice in `{text}`"
                )));
            }
            out.push(kind);
        }
        Ok(out)
    }
}

/// Everything that decides an AutoAttack result (the state file refuses to resume with
/// other values).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AaConfig {
    pub attacks: Vec<AttackKind>,
    /// Radius in the norm's units: L∞ in [0, 1] pixel units, L2 over the whole image.
    pub eps: f64,
    /// Which version the attacks and budgets come from (standard in files written before
    /// versions existed; a custom list records standard).
    #[serde(default)]
    pub version: AaVersion,
    /// The threat model (L∞ in state files and sessions written before L2 existed).
    #[serde(default)]
    pub norm: Norm,
    pub seed: u64,
    /// APGD iterations (100 as published) and restarts of APGD-CE/-DLR (1 in the standard version).
    pub apgd_iters: usize,
    pub apgd_restarts: usize,
    /// Target classes of APGD-T and FAB-T (9 as published).
    pub targets: usize,
    pub fab_iters: usize,
    /// Restarts of untargeted FAB (5 in the plus version; later ones start at random).
    #[serde(default = "one")]
    pub fab_restarts: usize,
    /// Gradient samples averaged per APGD step (EOT; 20 in the rand version).
    #[serde(default = "one")]
    pub eot_iter: usize,
    pub square_queries: usize,
    /// Square's initial fraction of pixels changed (0.8 as published).
    pub square_p_init: f64,
    /// Used when `pgd` is in the list (its eps is `eps`).
    pub pgd: PgdConfig,
    pub batch_size: usize,
}

impl AaConfig {
    /// The standard version at radius `eps`.
    pub fn standard(eps: f64, seed: u64) -> AaConfig {
        AaConfig {
            attacks: STANDARD.to_vec(),
            eps,
            norm: Norm::Linf,
            version: AaVersion::Standard,
            seed,
            apgd_iters: 100,
            apgd_restarts: 1,
            targets: 9,
            fab_iters: 100,
            fab_restarts: 1,
            eot_iter: 1,
            square_queries: 5000,
            square_p_init: 0.8,
            pgd: PgdConfig {
                eps,
                ..PgdConfig::default()
            },
            batch_size: 250,
        }
    }

    /// `autoattack` for the standard version (`autoattack-plus`, `autoattack-rand` for the
    /// others), else the attack names comma-separated.
    pub fn list_name(&self) -> String {
        if self.attacks == self.version.attacks() {
            match self.version {
                AaVersion::Standard => "autoattack".into(),
                v => format!("autoattack-{}", v.name()),
            }
        } else {
            self.attacks
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(",")
        }
    }

    /// Bad values found before any compute: radius, counts, and class count of the model.
    pub fn validate(&self, num_classes: i64) -> Result<(), AaError> {
        let bad = |m: String| Err(AaError::Config(m));
        match self.norm {
            Norm::Linf if !(self.eps > 0.0 && self.eps <= 1.0) => {
                return bad(format!(
                    "--eps must be in (0, 1] pixel units (e.g. 8/255), got {}",
                    self.eps
                ))
            }
            Norm::L2 if !(self.eps > 0.0 && self.eps.is_finite()) => {
                return bad(format!(
                    "--norm l2: --eps must be a positive L2 length over the whole image (e.g. 0.5 on CIFAR-10), got {}",
                    self.eps
                ))
            }
            _ => {}
        }
        if self.attacks.is_empty() {
            return bad("no attack to run".into());
        }
        let has = |k: AttackKind| self.attacks.contains(&k);
        if has(AttackKind::Square) && self.square_queries == 0 {
            return bad("Square needs at least one query (--square-queries 0 given)".into());
        }
        if (has(AttackKind::ApgdCe) || has(AttackKind::ApgdDlr) || has(AttackKind::ApgdT))
            && (self.apgd_iters == 0 || self.apgd_restarts == 0)
        {
            return bad("APGD needs at least one iteration and one restart".into());
        }
        if (has(AttackKind::FabT) || has(AttackKind::Fab)) && self.fab_iters == 0 {
            return bad("FAB needs at least one iteration".into());
        }
        if has(AttackKind::Fab) && self.fab_restarts == 0 {
            return bad("FAB needs at least one restart".into());
        }
        if self.eot_iter == 0 {
            return bad("EOT needs at least one gradient sample".into());
        }
        if has(AttackKind::Pgd) && (self.pgd.steps == 0 || self.pgd.restarts == 0) {
            return bad("PGD needs at least one step and one restart".into());
        }
        if !(self.square_p_init > 0.0 && self.square_p_init <= 1.0) {
            return bad(format!(
                "Square's p_init must be in (0, 1], got {}",
                self.square_p_init
            ));
        }
        if self.batch_size == 0 {
            return bad("--batch-size must be at least 1".into());
        }
        let targeted = has(AttackKind::ApgdT) || has(AttackKind::FabT);
        if targeted && (self.targets == 0 || self.targets as i64 > num_classes - 1) {
            return bad(format!(
                "APGD-T and FAB-T attack {} target classes, but the model has only {num_classes} classes (at most {} targets)",
                self.targets,
                num_classes - 1
            ));
        }
        let min_classes = if has(AttackKind::ApgdT) {
            4
        } else if has(AttackKind::ApgdDlr) {
            3
        } else {
            2
        };
        if num_classes < min_classes {
            return bad(format!(
                "the DLR loss needs at least {min_classes} classes; the model has {num_classes}"
            ));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AaError {
    #[error("{0}")]
    Config(String),
    #[error("state file {path}: {reason}")]
    State { path: String, reason: String },
    #[error("cancelled (the state file, if any, holds the finished work)")]
    Cancelled,
    #[error("libtorch error during AutoAttack: {0}")]
    Torch(#[from] tch::TchError),
    #[error("cannot save the AutoAttack state: {0}")]
    Save(#[source] crate::engine::files::SaveError),
}

impl From<AttackError> for AaError {
    fn from(e: AttackError) -> Self {
        match e {
            AttackError::Cancelled => AaError::Cancelled,
            AttackError::Torch(t) => AaError::Torch(t),
        }
    }
}
