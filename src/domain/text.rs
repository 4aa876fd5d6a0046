//! Characters that make text show something other than what it is. Bidi
//! controls reorder what follows them (`Ann\u{202E}gpj.exe` shows as
//! `Annexe.jpg`), and zero-width characters hide inside a word, so that two
//! names or addresses that look identical differ. Imported text that reaches
//! an email, a report or a `To:` header must not carry them, so every roster
//! and report value is checked here and refused with where the character is.

/// A character refused in imported text, and where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disguise {
    pub character: char,
    /// 1-based position of the character in the value, counted in characters.
    pub position: usize,
    pub kind: &'static str,
}

impl std::fmt::Display for Disguise {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "contains U+{:04X} ({}) at character {}",
            self.character as u32, self.kind, self.position
        )
    }
}

/// What kind of disguising character `c` is, if it is one.
fn disguising_kind(c: char) -> Option<&'static str> {
    match c {
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => Some("a bidirectional control"),
        '\u{200E}' | '\u{200F}' | '\u{061C}' => Some("a bidirectional mark"),
        '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' => Some("a zero-width character"),
        _ => None,
    }
}

/// The first disguising character in `value`.
pub fn find_disguise(value: &str) -> Option<Disguise> {
    // Every such character is outside ASCII: plain values cost one scan.
    if value.is_ascii() {
        return None;
    }
    value.chars().enumerate().find_map(|(index, character)| {
        disguising_kind(character).map(|kind| Disguise {
            character,
            position: index + 1,
            kind,
        })
    })
}

/// What an import says of a cell that hides a disguising character: the
/// same words for rosters and completion reports.
pub fn disguise_problem(value: &str) -> Option<String> {
    find_disguise(value).map(|d| {
        format!("{d}, an invisible character that can make text look like something else; remove it from the cell in the export")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_bidi_and_zero_width_characters_with_their_position() {
        let found = find_disguise("Ann\u{202E}gpj").unwrap();
        assert_eq!((found.character, found.position), ('\u{202E}', 4));
        assert_eq!(
            found.to_string(),
            "contains U+202E (a bidirectional control) at character 4"
        );
        for c in [
            '\u{202A}', '\u{2066}', '\u{2069}', '\u{200B}', '\u{200D}', '\u{2060}', '\u{FEFF}',
        ] {
            assert!(
                find_disguise(&format!("é{c}")).is_some(),
                "U+{:04X}",
                c as u32
            );
        }
    }

    #[test]
    fn ordinary_names_in_any_script_pass() {
        for name in [
            "Zoë Ångström",
            "José Núñez",
            "محمد",
            "יעל",
            "王芳",
            "Łukasz",
        ] {
            assert_eq!(find_disguise(name), None, "{name}");
        }
    }
}
