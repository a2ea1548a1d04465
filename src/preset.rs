//! `--preset published`: every quirk of the reference RiFT code at once, for a user who
//! must reproduce the paper's numbers rather than rift's defaults. Flags given on the
//! command line still win: the preset only fills in the flags the user left at their
//! defaults, by appending them to the command line before it is parsed for real (so every
//! command reads them like any other flag, and a command without such a flag ignores it).
//! What each default is instead, and why, is in the README ("Defaults and the published
//! code").
use clap::parser::ValueSource;
use clap::CommandFactory;
use std::ffi::OsString;

/// One flag of a preset: clap's argument id, the flag, its value, and what it reproduces.
pub struct PresetFlag {
    pub id: &'static str,
    pub flag: &'static str,
    pub value: &'static str,
    pub reproduces: &'static str,
}

/// The published code's settings where rift's defaults differ.
pub const PUBLISHED: [PresetFlag; 4] = [
    PresetFlag {
        id: "step",
        flag: "--step",
        value: "2/225",
        reproduces: "the PGD step the published code passes (its typo for 2/255)",
    },
    PresetFlag {
        id: "select_on",
        flag: "--select-on",
        value: "test",
        reproduces: "fine-tuning keeps the epoch with the best test accuracy",
    },
    PresetFlag {
        id: "adv_split",
        flag: "--adv-split",
        value: "auto",
        reproduces: "MRC's adversarial set from the published split per dataset",
    },
    PresetFlag {
        id: "ood_headline",
        flag: "--ood-headline",
        value: "published18",
        reproduces: "the 18-corruption mean as the headline OOD number",
    },
];

/// The command line with the preset's flags added where the subcommand has them and the
/// user did not give them. Without `--preset` it is returned unchanged. A command line
/// clap refuses is returned unchanged too: the real parse reports the error.
pub fn expand(argv: Vec<OsString>) -> Vec<OsString> {
    let command = crate::cli::Cli::command();
    let Ok(matches) = command.clone().try_get_matches_from(&argv) else {
        return argv;
    };
    let Some((name, sub)) = matches.subcommand() else {
        return argv;
    };
    let Some(sub_command) = command.find_subcommand(name) else {
        return argv;
    };
    let preset = match sub.try_get_one::<String>("preset") {
        Ok(Some(p)) => p.as_str(),
        _ => return argv,
    };
    let flags: &[PresetFlag] = match preset {
        "published" => &PUBLISHED,
        _ => return argv,
    };
    let mut out = argv;
    for f in flags {
        let has_flag = sub_command.get_arguments().any(|a| a.get_id() == f.id);
        if has_flag && sub.value_source(f.id) != Some(ValueSource::CommandLine) {
            eprintln!("preset {preset}: {} {} ({})", f.flag, f.value, f.reproduces);
            out.push(f.flag.into());
            out.push(f.value.into());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> crate::cli::Cli {
        let argv: Vec<OsString> = args.iter().map(OsString::from).collect();
        crate::cli::Cli::parse_from(expand(argv))
    }

    /// The preset fills what was left at the default; an explicit flag wins.
    #[test]
    fn published_fills_defaults_and_explicit_flags_win() {
        let base = ["rift", "run", "--checkpoint", "m.pth", "--session", "s"];
        let plain = parse(&base);
        let mut with: Vec<&str> = base.to_vec();
        with.extend(["--preset", "published"]);
        let published = parse(&with);
        let mut explicit = with.clone();
        explicit.extend(["--step", "2/255", "--select-on", "val"]);
        let explicit = parse(&explicit);
        let get = |c: &crate::cli::Cli| match &c.command {
            crate::cli::Command::Run(r) => (
                r.attack.step,
                r.ft.select_on.clone(),
                r.ood.ood_headline.clone(),
                r.runtime.preset.clone(),
            ),
            _ => panic!("not a run"),
        };
        let (step, select, headline, preset) = get(&plain);
        assert_eq!(
            (step, select.as_str(), headline.as_str()),
            (2.0 / 255.0, "val", "found")
        );
        assert_eq!(preset, None);
        let (step, select, headline, preset) = get(&published);
        assert_eq!(step, 2.0 / 225.0);
        assert_eq!(
            (select.as_str(), headline.as_str()),
            ("test", "published18")
        );
        assert_eq!(preset.as_deref(), Some("published"));
        let (step, select, _, _) = get(&explicit);
        assert_eq!((step, select.as_str()), (2.0 / 255.0, "val"));
    }

    /// A command without some of the preset's flags takes the others.
    #[test]
    fn commands_take_the_flags_they_have() {
        let c = parse(&[
            "rift",
            "eval",
            "--checkpoint",
            "m.pth",
            "--preset",
            "published",
        ]);
        match &c.command {
            crate::cli::Command::Eval(e) => assert_eq!(e.attack.step, 2.0 / 225.0),
            _ => panic!("not eval"),
        }
    }
}
