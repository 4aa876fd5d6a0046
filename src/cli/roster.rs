//! `ambassador roster import | list`.

use ambassador::clock::{from_millis, SystemClock};
use ambassador::config::Settings;
use ambassador::report::spreadsheet_cell;
use ambassador::roster::{self, ImportError, ImportMode, ImportOptions, ImportReport};
use ambassador::store::roster::StaffRow;
use ambassador::store::RosterSource;
use clap::{Subcommand, ValueEnum};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum RosterCommand {
    /// Import a staff roster exported from HR (CSV; UTF-8, UTF-16 or Windows-1252; comma, semicolon or tab).
    #[command(
        after_help = "Examples:\n  ambassador roster import staff.csv --dry-run      # see what would change\n  ambassador roster import staff.csv                # apply: all rows or nothing\n  ambassador roster import contractors.csv --source vendor-portal --mode add\n\nThe file needs an email column (\"Email\", \"Work Email\", ...). Employee ID, first/last name,\ndepartment, job title, location, supervisor email and time zone are recognised by their\ncommon names (Workday, UKG, Oracle HCM and SAP SuccessFactors spellings too); map others\nin config: [roster] columns = { \"Correo\" = \"email\", \"Nickname\" = \"ignore\" }.\nOther columns are kept as attributes for templates ({{attributes.cost_center}}); the\noutput lists where each column went. Time zones may be IANA (America/Chicago), Windows\n(\"Central Standard Time\") or Workday (\"GMT-06:00 Central Time (Chicago)\") names.\n\nRefused, with line and column: a file that is UTF-8 except for some bytes (line and byte\noffset given), quoted addresses (\"john doe\"@x.org), bidi or zero-width characters in any\ncell, headers over 256 characters, more than roster.max_columns columns."
    )]
    Import {
        /// The CSV file.
        file: PathBuf,
        /// Which system the file comes from; a sync only deactivates people of this source.
        #[arg(long, default_value = RosterSource::HR)]
        source: RosterSource,
        /// sync: the file is the whole roster (absent people are deactivated); add: only add and update.
        #[arg(long, value_enum, default_value_t = ImportMode::Sync)]
        mode: ImportMode,
        /// Show what would change; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Import the valid rows and report the rest (default: one bad row and nothing is imported).
        #[arg(long)]
        skip_invalid: bool,
        /// Apply even an export with no data rows, a sync that deactivates more than roster.max_deactivate_share, or a file imported before a later import of the same source.
        #[arg(long)]
        force: bool,
        #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
        format: ReportFormat,
    },
    /// List the people in the roster.
    #[command(
        after_help = "Example:\n  ambassador roster list --inactive --format csv > roster.csv"
    )]
    List {
        /// Include people deactivated by a sync.
        #[arg(long)]
        inactive: bool,
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        /// One line per person, however wide (default: fit the terminal, wrapping long cells).
        #[arg(long)]
        wide: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    Human,
    /// The stable schema documented in docs/cli-json.md.
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ListFormat {
    Table,
    Csv,
    Json,
}

pub async fn run(cmd: RosterCommand, settings: &Settings) -> anyhow::Result<ExitCode> {
    match cmd {
        RosterCommand::Import {
            file,
            source,
            mode,
            dry_run,
            skip_invalid,
            force,
            format,
        } => {
            let bytes = std::fs::read(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let options = ImportOptions {
                source,
                mode,
                dry_run,
                skip_invalid,
                force,
                file_name: file.display().to_string(),
            };
            let store = super::open_store(settings).await?;
            let bar = progress_bar(bytes.len());
            let result = roster::import(
                &store,
                &SystemClock,
                &settings.roster,
                &bytes,
                &options,
                &mut |done, total| {
                    if let Some(bar) = &bar {
                        bar.set_length(total);
                        bar.set_position(done);
                    }
                },
            )
            .await;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            if !options.dry_run {
                let detail = match &result {
                    Ok(report) => ambassador::audit::roster_detail(report),
                    Err(e) => match e.report() {
                        Some(report) => ambassador::audit::roster_detail(report),
                        None => serde_json::json!({
                            "file": options.file_name,
                            "sha256": ambassador::audit::sha256_hex(&bytes),
                        }),
                    },
                };
                let action = ambassador::audit::Action::RosterImport;
                super::audit(&store, action, &options.file_name, &result, detail).await;
            }
            store.close().await;
            print_import(result, format)
        }
        RosterCommand::List {
            inactive,
            format,
            wide,
        } => {
            let store = super::open_store(settings).await?;
            let people = store.list_staff(inactive).await?;
            store.close().await;
            print_list(&people, format, wide)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A progress bar on a terminal, for files large enough to wait for.
fn progress_bar(bytes: usize) -> Option<indicatif::ProgressBar> {
    if bytes < 2_000_000 || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(bytes as u64);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("reading {bar:40} {bytes}/{total_bytes} ({eta})")
    {
        bar.set_style(style);
    }
    Some(bar)
}

fn print_import(
    result: Result<ImportReport, ImportError>,
    format: ReportFormat,
) -> anyhow::Result<ExitCode> {
    let (report, failure) = match result {
        Ok(report) => (Some(report), None),
        Err(e) => (e.report().cloned(), Some(e)),
    };
    if let Some(report) = &report {
        match format {
            ReportFormat::Json => println!("{}", serde_json::to_string_pretty(report)?),
            ReportFormat::Human => print_human(report),
        }
    }
    match failure {
        None => Ok(ExitCode::SUCCESS),
        Some(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn print_human(r: &ImportReport) {
    let mut out = std::io::stdout().lock();
    let verb = if r.applied {
        "imported"
    } else if r.dry_run && r.refused.is_none() && r.rejected.is_empty() {
        "dry run, nothing written"
    } else {
        "nothing written"
    };
    let _ = writeln!(
        out,
        "{} ({}, {}, delimiter {:?}, source {:?}, mode {}): {verb}",
        r.file,
        r.encoding,
        short(&r.sha256),
        r.delimiter,
        r.source,
        r.mode.as_str()
    );
    let c = &r.counts;
    let _ = writeln!(
        out,
        "  added {}  updated {}  unchanged {}  deactivated {}  reactivated {}  rejected {}",
        c.added, c.updated, c.unchanged, c.deactivated, c.reactivated, c.rejected
    );
    print_mapping(&mut out, r);
    for e in &r.rejected {
        let _ = writeln!(out, "  rejected: {e}");
    }
    for w in &r.warnings {
        let _ = writeln!(out, "  warning: {w}");
    }
    if r.dry_run {
        const SHOWN: usize = 50;
        for change in r.changes.iter().filter(|c| c.action != "add").take(SHOWN) {
            let fields: Vec<String> = change
                .fields
                .iter()
                .map(|f| format!("{}: {:?} -> {:?}", f.field, f.from, f.to))
                .collect();
            let _ = writeln!(
                out,
                "  would {} {} {}",
                change.action,
                change.email,
                fields.join(", ")
            );
        }
        let hidden = r
            .changes
            .iter()
            .filter(|c| c.action != "add")
            .count()
            .saturating_sub(SHOWN);
        if hidden > 0 {
            let _ = writeln!(out, "  ... and {hidden} more (use --format json for all)");
        }
    }
}

/// Which column went to which field, then the columns kept as attributes
/// and the ones ignored, with a note where a column lost its field.
fn print_mapping(out: &mut impl Write, r: &ImportReport) {
    let fields: Vec<String> = r
        .columns
        .iter()
        .filter(|c| !c.to.starts_with("attributes.") && c.to != "ignore")
        .map(|c| format!("{:?} -> {}", c.column, c.to))
        .collect();
    let _ = writeln!(out, "  columns: {}", fields.join(", "));
    let kept: Vec<String> = r
        .columns
        .iter()
        .filter_map(|c| {
            c.to.strip_prefix("attributes.")
                .map(|a| format!("{:?} ({a})", c.column))
        })
        .collect();
    if !kept.is_empty() {
        let _ = writeln!(out, "  kept as attributes: {}", kept.join(", "));
    }
    let ignored: Vec<String> = r
        .columns
        .iter()
        .filter(|c| c.to == "ignore")
        .map(|c| format!("{:?}", c.column))
        .collect();
    if !ignored.is_empty() {
        let _ = writeln!(out, "  ignored: {}", ignored.join(", "));
    }
    for c in &r.columns {
        if let Some(note) = &c.note {
            let _ = writeln!(out, "  note: column {:?} {note}", c.column);
        }
    }
}

fn short(sha: &str) -> String {
    format!("sha256 {}…", &sha[..sha.len().min(12)])
}

fn print_list(people: &[StaffRow], format: ListFormat, wide: bool) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        ListFormat::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&people.iter().map(list_json).collect::<Vec<_>>())?
        )?,
        ListFormat::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(LIST_HEADER)?;
            for p in people {
                w.write_record(
                    list_cells(p)
                        .iter()
                        .map(|c| spreadsheet_cell(c))
                        .collect::<Vec<_>>()
                        .iter()
                        .map(|c| c.as_ref()),
                )?;
            }
            w.flush()?;
        }
        ListFormat::Table => {
            let mut rows: Vec<Vec<String>> = vec![LIST_HEADER.map(String::from).to_vec()];
            rows.extend(people.iter().map(list_cells));
            for line in super::table::lines(&rows, super::table::width(wide)) {
                writeln!(out, "{line}")?;
            }
            writeln!(out, "{} people", people.len())?;
        }
    }
    Ok(())
}

const LIST_HEADER: [&str; 10] = [
    "email",
    "employee_id",
    "first_name",
    "last_name",
    "department",
    "role",
    "facility",
    "manager_email",
    "active",
    "source",
];

fn list_cells(p: &StaffRow) -> Vec<String> {
    vec![
        p.email.clone(),
        p.employee_id.clone().unwrap_or_default(),
        p.first_name.clone(),
        p.last_name.clone(),
        p.department.clone(),
        p.role.clone(),
        p.facility.clone(),
        p.manager_email.clone().unwrap_or_default(),
        if p.active == 1 {
            "yes".into()
        } else {
            "no".into()
        },
        p.source.clone(),
    ]
}

fn list_json(p: &StaffRow) -> serde_json::Value {
    serde_json::json!({
        "email": p.email,
        "employee_id": p.employee_id,
        "first_name": p.first_name,
        "last_name": p.last_name,
        "department": p.department,
        "role": p.role,
        "facility": p.facility,
        "manager_email": p.manager_email,
        "time_zone": p.time_zone,
        "attributes": serde_json::from_str::<serde_json::Value>(&p.attributes).unwrap_or_default(),
        "active": p.active == 1,
        "source": p.source,
        "created_at": from_millis(p.created_at).to_rfc3339(),
        "deactivated_at": p.deactivated_at.map(|t| from_millis(t).to_rfc3339()),
    })
}
