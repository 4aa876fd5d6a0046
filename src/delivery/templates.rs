//! Email templates: handlebars in strict mode, so a missing variable is an
//! error when a campaign is applied, never a blank in a sent email. HTML parts
//! escape every value; subject and text parts are plain text (no escaping,
//! nothing to escape into). Roster values are data, never template source.

use super::context::{sample_context, MessageContext};
use super::encode;
use super::reuse::Reuse;
use crate::campaign::Campaign;
use crate::config::Language;
use handlebars::{Handlebars, Template};
use lettre::message::Body;
use std::path::Path;

/// The templates shipped in the binary, from `templates/email/$dir`:
/// (name, part, source).
macro_rules! shipped {
    ($dir:literal) => {
        &[
            ("layout", "html", include_str!(concat!("../../templates/email/", $dir, "layout.html.hbs"))),
            shipped!(@one $dir, "news_item", "subject"),
            shipped!(@one $dir, "news_item", "html"),
            shipped!(@one $dir, "news_item", "txt"),
            shipped!(@one $dir, "reminder", "subject"),
            shipped!(@one $dir, "reminder", "html"),
            shipped!(@one $dir, "reminder", "txt"),
            shipped!(@one $dir, "escalation", "subject"),
            shipped!(@one $dir, "escalation", "html"),
            shipped!(@one $dir, "escalation", "txt"),
            shipped!(@one $dir, "thanks", "subject"),
            shipped!(@one $dir, "thanks", "html"),
            shipped!(@one $dir, "thanks", "txt"),
            shipped!(@one $dir, "weekly_summary", "subject"),
            shipped!(@one $dir, "weekly_summary", "html"),
            shipped!(@one $dir, "weekly_summary", "txt"),
            shipped!(@one $dir, "team_digest", "subject"),
            shipped!(@one $dir, "team_digest", "html"),
            shipped!(@one $dir, "team_digest", "txt"),
        ]
    };
    (@one $dir:literal, $name:literal, $part:literal) => {
        (
            $name,
            $part,
            include_str!(concat!("../../templates/email/", $dir, $name, ".", $part, ".hbs")),
        )
    };
}

/// U.S. English, as the course and its sources are written (the default).
const EN_US: &[(&str, &str, &str)] = shipped!("");
/// British English (`templates.language = "en-GB"`).
const EN_GB: &[(&str, &str, &str)] = shipped!("en-GB/");

/// One rendered message, before it becomes MIME.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// One message's parts with the bodies MIME-encoded: what a message is built from.
#[derive(Debug, Clone)]
pub struct EncodedEmail {
    pub subject: String,
    pub html: Body,
    pub text: Body,
}

impl From<RenderedEmail> for EncodedEmail {
    fn from(rendered: RenderedEmail) -> Self {
        Self {
            html: encode::body(&rendered.html),
            text: encode::body(&rendered.text),
            subject: rendered.subject,
        }
    }
}

/// A compiled set of email templates.
#[derive(Debug)]
pub struct Templates {
    html: Handlebars<'static>,
    plain: Handlebars<'static>,
    names: Vec<String>,
    /// What campaign messages say to everyone, rendered and encoded once
    /// (`None`: every message rendered whole).
    reuse: Option<Reuse>,
}

/// Why templates cannot be loaded or rendered.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template {name}.{part}: {source}")]
    Syntax {
        name: String,
        part: String,
        source: Box<handlebars::TemplateError>,
    },
    #[error("template {name}.{part}: {source}")]
    Render {
        name: String,
        part: String,
        source: Box<handlebars::RenderError>,
    },
    #[error(
        "no template named {0:?}; templates need NAME.subject.hbs, NAME.html.hbs and NAME.txt.hbs"
    )]
    Missing(String),
    #[error("cannot read templates from {dir}: {source}")]
    Io { dir: String, source: std::io::Error },
}

impl Templates {
    /// The shipped templates only, in U.S. English.
    pub fn embedded() -> Result<Self, TemplateError> {
        Self::load(None)
    }

    /// The shipped U.S. English templates, overridden by any NAME.PART.hbs in `dir`.
    pub fn load(dir: Option<&Path>) -> Result<Self, TemplateError> {
        Self::load_in(Language::EnUs, dir)
    }

    /// The shipped templates in `language`, overridden by any NAME.PART.hbs in `dir`.
    pub fn load_in(language: Language, dir: Option<&Path>) -> Result<Self, TemplateError> {
        let shipped = match language {
            Language::EnUs => EN_US,
            Language::EnGb => EN_GB,
        };
        let mut sources: Vec<(String, String, String)> = shipped
            .iter()
            .map(|(n, p, s)| (n.to_string(), p.to_string(), s.to_string()))
            .collect();
        if let Some(dir) = dir {
            sources.extend(read_dir(dir)?);
        }
        let mut html = Handlebars::new();
        html.set_strict_mode(true);
        let mut plain = Handlebars::new();
        plain.set_strict_mode(true);
        plain.register_escape_fn(handlebars::no_escape);
        let mut names = Vec::new();
        for (name, part, source) in sources {
            let syntax = |e: handlebars::TemplateError| TemplateError::Syntax {
                name: name.clone(),
                part: part.clone(),
                source: Box::new(e),
            };
            let key = format!("{name}.{part}");
            match part.as_str() {
                "html" if name == "layout" => {
                    html.register_partial("layout", source).map_err(syntax)?
                }
                "html" => html
                    .register_template_string(&key, source)
                    .map_err(syntax)?,
                _ => plain
                    .register_template_string(&key, source)
                    .map_err(syntax)?,
            }
            if part == "subject" && !names.contains(&name) {
                names.push(name);
            }
        }
        Ok(Self {
            html,
            plain,
            names,
            reuse: Some(Reuse::default()),
        })
    }

    /// The same templates rendering every message whole, as a reference for
    /// tests and benchmarks of the reuse (the bytes are the same).
    pub fn without_reuse(mut self) -> Self {
        self.reuse = None;
        self
    }

    pub fn has(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    /// Renders all three parts of a template for one campaign message.
    pub fn render(
        &self,
        name: &str,
        context: &MessageContext,
    ) -> Result<RenderedEmail, TemplateError> {
        self.render_data(name, context)
    }

    /// A campaign message's parts, the bodies MIME-encoded; what is the same
    /// for everyone comes from the cache (see `reuse`). The same bytes as
    /// [`Templates::render`] encoded whole.
    pub fn render_encoded(
        &self,
        name: &str,
        context: &MessageContext,
    ) -> Result<EncodedEmail, TemplateError> {
        if let Some(encoded) = self
            .reuse
            .as_ref()
            .and_then(|r| r.render(self, name, context))
        {
            return Ok(encoded);
        }
        Ok(self.render(name, context)?.into())
    }

    /// How many keys the reuse cache holds (none when it is off): tests and
    /// benchmarks check that messages really come from it.
    pub fn reused_keys(&self) -> usize {
        self.reuse.as_ref().map_or(0, Reuse::keys)
    }

    /// The parsed parts of a template (subject, HTML, text) and the layout,
    /// for the reuse to read what they do with values.
    pub(super) fn parsed(&self, name: &str) -> Option<(Vec<&Template>, Option<&Template>)> {
        if !self.has(name) {
            return None;
        }
        let parts = vec![
            self.plain.get_template(&format!("{name}.subject"))?,
            self.html.get_template(&format!("{name}.html"))?,
            self.plain.get_template(&format!("{name}.txt"))?,
        ];
        Some((parts, self.html.get_template("layout")))
    }

    /// Renders all three parts of a template with any serialisable context:
    /// the weekly summary and the team digest have their own.
    pub fn render_data<T: serde::Serialize>(
        &self,
        name: &str,
        context: &T,
    ) -> Result<RenderedEmail, TemplateError> {
        let mut rendered = self.render_unlined(name, context)?;
        rendered.subject = one_line(&rendered.subject);
        Ok(rendered)
    }

    /// [`Templates::render_data`] with the subject as the template wrote it.
    pub(super) fn render_unlined<T: serde::Serialize>(
        &self,
        name: &str,
        context: &T,
    ) -> Result<RenderedEmail, TemplateError> {
        if !self.has(name) {
            return Err(TemplateError::Missing(name.to_string()));
        }
        let render = |reg: &Handlebars<'static>, part: &str| {
            reg.render(&format!("{name}.{part}"), context)
                .map_err(|e| TemplateError::Render {
                    name: name.into(),
                    part: part.into(),
                    source: Box::new(e),
                })
        };
        Ok(RenderedEmail {
            subject: render(&self.plain, "subject")?,
            html: render(&self.html, "html")?,
            text: render(&self.plain, "txt")?,
        })
    }

    /// Renders every step of a campaign with a complete sample context, so a
    /// template that names a missing variable fails now, not at send time.
    pub fn check_campaign(&self, campaign: &Campaign) -> Result<(), TemplateError> {
        for step in &campaign.steps {
            self.render(&step.template, &sample_context(campaign, step))?;
        }
        Ok(())
    }
}

/// A subject is one line of text: control characters become spaces.
pub(super) fn one_line(subject: &str) -> String {
    let cleaned: String = subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn read_dir(dir: &Path) -> Result<Vec<(String, String, String)>, TemplateError> {
    let io = |source| TemplateError::Io {
        dir: dir.display().to_string(),
        source,
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        let Some(stem) = file.strip_suffix(".hbs") else {
            continue;
        };
        let Some((name, part)) = stem.rsplit_once('.') else {
            continue;
        };
        if matches!(part, "subject" | "html" | "txt") {
            found.push((
                name.to_string(),
                part.to_string(),
                std::fs::read_to_string(&path).map_err(io)?,
            ));
        }
    }
    Ok(found)
}

impl crate::campaign::StepTemplates for Templates {
    fn check_steps(
        &self,
        campaign: &Campaign,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.check_campaign(campaign)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every part of every step of the shipped campaign, as sent.
    fn rendered(language: Language) -> String {
        let campaign = Campaign::from_toml(
            include_str!("../../config/campaigns/soar.toml"),
            "soar.toml",
        )
        .unwrap();
        let templates = Templates::load_in(language, None).unwrap();
        let mut all = String::new();
        for step in &campaign.steps {
            let r = templates
                .render(&step.template, &sample_context(&campaign, step))
                .unwrap();
            all.extend([r.subject, r.html, r.text]);
        }
        all
    }

    #[test]
    fn the_shipped_emails_are_in_us_english_unless_british_is_chosen() {
        // The ILO's own name keeps its spelling in both.
        let us = rendered(Language::EnUs).replace("International Labour Organization", "");
        let gb = rendered(Language::EnGb).replace("International Labour Organization", "");
        for british in ["labour", "LABOUR", "organisations", "Enrol "] {
            assert!(!us.contains(british), "{british:?} in the U.S. emails");
            assert!(
                gb.contains(british),
                "{british:?} missing from the British emails"
            );
        }
        assert!(us.contains("forced labor") && us.contains("organizations"));
    }

    #[test]
    fn subjects_are_one_line() {
        assert_eq!(one_line("  Hello\r\nBcc: x@y.org \t"), "Hello Bcc: x@y.org");
    }
}
