//! The page templates (templates/ui/*.hbs), built into the binary like the
//! email templates. Every value is HTML-escaped; the only unescaped inserts
//! are the rendered page body and the server-made SVG chart.

use super::session::SignedIn;
use super::UiError;
use crate::accounts::Role;
use axum::response::Html;
use handlebars::Handlebars;
use serde_json::{json, Value};

const PAGES: &[(&str, &str)] = &[
    ("layout", include_str!("../../../templates/ui/layout.hbs")),
    ("sign_in", include_str!("../../../templates/ui/sign_in.hbs")),
    (
        "dashboard",
        include_str!("../../../templates/ui/dashboard.hbs"),
    ),
    ("roster", include_str!("../../../templates/ui/roster.hbs")),
    (
        "roster_form",
        include_str!("../../../templates/ui/roster_form.hbs"),
    ),
    (
        "roster_result",
        include_str!("../../../templates/ui/roster_result.hbs"),
    ),
    (
        "completions",
        include_str!("../../../templates/ui/completions.hbs"),
    ),
    (
        "completions_form",
        include_str!("../../../templates/ui/completions_form.hbs"),
    ),
    (
        "completions_result",
        include_str!("../../../templates/ui/completions_result.hbs"),
    ),
    (
        "campaign",
        include_str!("../../../templates/ui/campaign.hbs"),
    ),
    (
        "accounts",
        include_str!("../../../templates/ui/accounts.hbs"),
    ),
    ("audit", include_str!("../../../templates/ui/audit.hbs")),
];

/// The compiled page templates.
pub struct View {
    pages: Handlebars<'static>,
}

impl View {
    /// Compiles the built-in templates; a syntax error there is a bug the tests catch.
    pub fn new() -> Self {
        let mut pages = Handlebars::new();
        pages.set_strict_mode(false);
        for (name, source) in PAGES {
            pages
                .register_template_string(name, *source)
                .unwrap_or_else(|e| panic!("templates/ui/{name}.hbs: {e}"));
        }
        Self { pages }
    }

    /// One whole page: `name` rendered with `data`, inside the layout.
    /// `nav` names the current section for `aria-current`.
    pub fn page(
        &self,
        name: &str,
        title: &str,
        nav: &str,
        session: Option<&SignedIn>,
        data: &Value,
    ) -> Result<Html<String>, UiError> {
        let mut data = data.clone();
        let may = |role: Role| session.is_some_and(|s| s.principal.role().allows(role));
        if let Some(s) = session {
            data["csrf"] = json!(s.csrf);
            // What the page offers follows the role: a viewer sees no form
            // it could not send (the server refuses it anyway).
            data["may_coordinate"] = json!(may(Role::Coordinator));
            data["may_admin"] = json!(may(Role::Admin));
        }
        let body = self.pages.render(name, &data)?;
        let page = self.pages.render(
            "layout",
            &json!({
                "title": title,
                "body": body,
                "signed_in": session.is_some(),
                "who": session.map(|s| s.principal.name()),
                "role": session.map(|s| s.principal.role().as_str()),
                "may_coordinate": may(Role::Coordinator),
                "may_admin": may(Role::Admin),
                "csrf": session.map(|s| s.csrf.as_str()),
                "nav": { nav: true },
            }),
        )?;
        Ok(Html(page))
    }
}
