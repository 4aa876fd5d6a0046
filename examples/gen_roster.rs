//! Writes a realistic HR roster export for benchmarks:
//! `cargo run --release --example gen_roster -- 100000 roster.csv`.
//!
//! The columns and spellings are those of a typical HR system export
//! ("Employee ID", "Work Email", "Supervisor Email", an extra "Cost Center"),
//! every tenth name has an accent, a few values need quoting. The output is
//! deterministic (fixed seed) so runs compare like with like.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io::{BufWriter, Write};

const FIRST: [&str; 24] = [
    "Ann",
    "Bilal",
    "Carmen",
    "Dmitri",
    "Elena",
    "Farah",
    "George",
    "Hana",
    "Ivan",
    "Jamal",
    "Keiko",
    "Liam",
    "Maria",
    "Nikhil",
    "Olga",
    "Pedro",
    "Quinn",
    "Rosa",
    "Samir",
    "Tomás",
    "Ursula",
    "Véronique",
    "Wei",
    "Zoë",
];
const LAST: [&str; 24] = [
    "Adams", "Brown", "Chen", "Diaz", "Evans", "Fischer", "García", "Hughes", "Ito", "Jones",
    "Kowalski", "Lee", "Müller", "Nguyen", "O'Brien", "Patel", "Quinn", "Rossi", "Smith", "Taylor",
    "Usman", "Vargas", "Wilson", "Young",
];
const DEPARTMENTS: [&str; 12] = [
    "Supply Chain",
    "Procurement",
    "Nursing",
    "Pharmacy",
    "Radiology",
    "Emergency Medicine",
    "Finance",
    "Human Resources",
    "Facilities",
    "Information Technology",
    "Surgery",
    "Laboratory, Pathology",
];
const ROLES: [&str; 10] = [
    "Buyer",
    "Senior Buyer",
    "Registered Nurse",
    "Pharmacist",
    "Technician",
    "Analyst",
    "Manager",
    "Director",
    "Coordinator",
    "Clerk",
];
const SITES: [&str; 6] = [
    "Main Campus",
    "North Clinic",
    "Eastside Hospital",
    "Distribution Center",
    "Riverside Medical Office",
    "Home Office",
];
const ZONES: [&str; 4] = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
];

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let rows: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let path = args.next().unwrap_or_else(|| "roster.csv".into());
    let mut out = BufWriter::new(std::fs::File::create(&path)?);
    let mut rng = StdRng::seed_from_u64(2027);
    writeln!(
        out,
        "Employee ID,First Name,Last Name,Work Email,Department,Job Title,Location,Supervisor Email,Time Zone,Cost Center"
    )?;
    for i in 0..rows {
        let first = FIRST[rng.gen_range(0..FIRST.len())];
        let last = LAST[rng.gen_range(0..LAST.len())];
        let email = email_of(first, last, i);
        // One manager mailbox per ~12 reports; the first person has none.
        let manager = if i == 0 {
            String::new()
        } else {
            format!("manager.{}@health.example.org", i / 12)
        };
        writeln!(
            out,
            "E{:07},{},{},{},{},{},{},{},{},CC-{:04}",
            100_000 + i,
            first,
            quoted(last),
            email,
            quoted(DEPARTMENTS[rng.gen_range(0..DEPARTMENTS.len())]),
            ROLES[rng.gen_range(0..ROLES.len())],
            SITES[rng.gen_range(0..SITES.len())],
            manager,
            ZONES[rng.gen_range(0..ZONES.len())],
            rng.gen_range(1000..9999),
        )?;
    }
    out.flush()
}

/// The address of person `i`, unique by construction.
fn email_of(first: &str, last: &str, i: usize) -> String {
    let ascii = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    format!("{}.{}.{}@health.example.org", ascii(first), ascii(last), i)
}

fn quoted(value: &str) -> String {
    if value.contains([',', '"', '\'']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}
