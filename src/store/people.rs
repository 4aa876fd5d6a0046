//! Finding people in the roster for the admin page: a search over name,
//! email and department, one page at a time. The search text is bound as a
//! parameter with LIKE's wildcards escaped, so it only ever matches itself.

use super::roster::{StaffRow, STAFF_COLUMNS};
use super::Store;

/// Which people a roster search asks for.
#[derive(Debug, Clone, Default)]
pub struct StaffSearch {
    /// Matched, ignoring case, anywhere in the full name, email or department.
    pub text: String,
    /// Also people no longer in the roster.
    pub include_inactive: bool,
    pub offset: i64,
    pub limit: i64,
}

/// One page of a roster search and how many people match in all.
#[derive(Debug, Clone)]
pub struct StaffPage {
    pub people: Vec<StaffRow>,
    pub total: i64,
}

/// The condition both queries share; `$1` is the LIKE pattern, `$2` is 1
/// when inactive people count too.
const MATCHES: &str = "(LOWER(first_name || ' ' || last_name) LIKE $1 ESCAPE '\\'
        OR LOWER(email) LIKE $1 ESCAPE '\\' OR LOWER(department) LIKE $1 ESCAPE '\\')
    AND (active = 1 OR $2 = 1)";

impl Store {
    /// People matching `search`, ordered by name, and the number matching.
    pub async fn search_staff(&self, search: &StaffSearch) -> anyhow::Result<StaffPage> {
        let pattern = like_pattern(&search.text);
        let inactive = i64::from(search.include_inactive);
        let sql = format!(
            "SELECT {STAFF_COLUMNS} FROM staff WHERE {MATCHES}
             ORDER BY last_name, first_name, email LIMIT $3 OFFSET $4"
        );
        let people = on_pool!(self, |c| sqlx::query_as(&sql)
            .bind(&pattern)
            .bind(inactive)
            .bind(search.limit)
            .bind(search.offset)
            .fetch_all(c)
            .await?);
        let total: i64 = on_pool!(self, |c| sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM staff WHERE {MATCHES}"
        ))
        .bind(&pattern)
        .bind(inactive)
        .fetch_one(c)
        .await?);
        Ok(StaffPage { people, total })
    }
}

/// `%text%`, lower-cased, with `\`, `%` and `_` escaped for `ESCAPE '\'`.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.trim().to_lowercase().chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn wildcards_in_the_search_match_only_themselves() {
        assert_eq!(like_pattern(" Ann_%\\ "), "%ann\\_\\%\\\\%");
        assert_eq!(like_pattern(""), "%%");
    }
}
