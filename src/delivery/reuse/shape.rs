//! What a template does with each value it names, read from its parsed form:
//! only printed (`{{person.first_name}}`), tested for truth
//! (`{{#if person.first_name}}`), or used any other way (a helper's
//! argument, `{{#if (eq campaign.days_left 1)}}`). A value that is only
//! printed, or printed and tested, can be left out of the render and filled
//! in afterwards; any other use keeps it in the render (and in the cache key).
//!
//! Templates whose output depends on values in ways this cannot follow
//! (blocks that change the context, such as `#each`; partials other than the
//! layout and inline ones) are not reused at all: they are rendered as before.
//! Only non-empty values on one line are filled in: handlebars indents the
//! lines of a value printed inside an indented partial, and an empty value
//! leaves its indentation state as it was; a one-line non-empty value and its
//! mark are written alike.

use handlebars::template::{HelperTemplate, Parameter, Template, TemplateElement};
use handlebars::{Path, PathSeg};
use std::collections::{HashMap, HashSet};

/// How a template uses one value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Uses {
    /// Printed as it is (escaped or not).
    pub printed: bool,
    /// The sole argument of `#if` or `#unless`: only its truth matters.
    pub tested: bool,
    /// Anything else: its exact value matters.
    pub other: bool,
}

/// Every value a template's parts name, by path from the context's root.
#[derive(Debug, Default)]
pub struct Shape {
    uses: HashMap<Vec<String>, Uses>,
    /// Every proper prefix of a named path (`person` for `person.email`).
    prefixes: HashSet<Vec<String>>,
}

/// Why a template is rendered whole every time.
pub type NotReusable = &'static str;

/// Characters the cache marks values with; a template containing them is not reused.
pub const MARKS: [char; 2] = ['\u{FDD0}', '\u{FDD1}'];

impl Shape {
    /// Reads the parts of one template (`layout`: the HTML layout partial).
    pub fn of(parts: &[&Template], layout: Option<&Template>) -> Result<Self, NotReusable> {
        let mut walk = Walk::default();
        for part in parts {
            walk.template(part)?;
        }
        if walk.uses_layout {
            walk.template(layout.ok_or("the layout partial is missing")?)?;
        }
        if let Some(name) = walk.partials.iter().find(|p| !walk.inline.contains(*p)) {
            let _ = name;
            return Err("a partial other than the layout and inline ones");
        }
        let mut shape = Shape {
            uses: walk.uses,
            prefixes: HashSet::new(),
        };
        for path in shape.uses.keys() {
            for end in 0..path.len() {
                shape.prefixes.insert(path[..end].to_vec());
            }
        }
        Ok(shape)
    }

    /// Whether the template names the value at `path`, a part of it or a
    /// container of it; a value it does not name cannot change its output.
    pub fn names(&self, path: &[String]) -> bool {
        self.prefixes.contains(path)
            || (0..=path.len()).any(|end| self.uses.contains_key(&path[..end]))
    }

    /// Whether the string value at `path` can be filled in after rendering:
    /// non-empty and on one line (so the mark tests and prints alike),
    /// printed, not used otherwise, and no other use names a part or a
    /// container of it.
    pub fn fillable(&self, path: &[String], value: &str) -> bool {
        let Some(uses) = self.uses.get(path) else {
            return false;
        };
        uses.printed
            && !uses.other
            && !value.is_empty()
            && !value.contains(['\n', '\r'])
            && !self.prefixes.contains(path)
            && (0..path.len()).all(|end| !self.uses.contains_key(&path[..end]))
    }
}

#[derive(Default)]
struct Walk {
    uses: HashMap<Vec<String>, Uses>,
    /// Partials called by name (other than the layout and the partial block).
    partials: HashSet<String>,
    /// Inline partials defined (`{{#*inline "why"}}`).
    inline: HashSet<String>,
    uses_layout: bool,
}

impl Walk {
    fn template(&mut self, template: &Template) -> Result<(), NotReusable> {
        for element in &template.elements {
            self.element(element)?;
        }
        Ok(())
    }

    fn element(&mut self, element: &TemplateElement) -> Result<(), NotReusable> {
        match element {
            TemplateElement::RawString(text) | TemplateElement::Comment(text) => {
                if text.contains(MARKS) {
                    return Err("the template contains the cache's marks");
                }
                Ok(())
            }
            TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => {
                self.expression(h)
            }
            TemplateElement::HelperBlock(h) => self.block(h),
            TemplateElement::DecoratorBlock(d) | TemplateElement::DecoratorExpression(d) => {
                if d.name.as_name() != Some("inline") {
                    return Err("a decorator other than inline");
                }
                match d.params.first() {
                    Some(Parameter::Literal(serde_json::Value::String(name))) => {
                        self.inline.insert(name.clone());
                    }
                    _ => return Err("an inline partial without a literal name"),
                }
                d.template.as_ref().map_or(Ok(()), |t| self.template(t))
            }
            TemplateElement::PartialExpression(d) | TemplateElement::PartialBlock(d) => {
                if !d.params.is_empty() || !d.hash.is_empty() {
                    return Err("a partial given a context or arguments");
                }
                match d.name.as_name() {
                    Some("layout") => self.uses_layout = true,
                    Some("@partial-block") => {}
                    Some(name) => {
                        self.partials.insert(name.to_string());
                    }
                    None => return Err("a partial named by an expression"),
                }
                d.template.as_ref().map_or(Ok(()), |t| self.template(t))
            }
            _ => Err("a template element this version does not know"),
        }
    }

    /// `{{path}}` prints a value; `{{helper args}}` uses its arguments.
    fn expression(&mut self, h: &HelperTemplate) -> Result<(), NotReusable> {
        if h.params.is_empty() && h.hash.is_empty() {
            let path = path_of(&h.name)?;
            self.note(path, |u| u.printed = true);
            return Ok(());
        }
        self.arguments(h)
    }

    /// `#if`/`#unless` test their argument and keep the context; any other
    /// block (`#each`, `#with`, raw blocks) is not followed.
    fn block(&mut self, h: &HelperTemplate) -> Result<(), NotReusable> {
        match h.name.as_name() {
            Some("if" | "unless") => {}
            _ => return Err("a block other than #if and #unless"),
        }
        if h.block_param.is_some() {
            return Err("block parameters");
        }
        match h.params.as_slice() {
            [argument @ Parameter::Path(_)] if h.hash.is_empty() => {
                let path = path_of(argument)?;
                self.note(path, |u| u.tested = true);
            }
            _ => self.arguments(h)?,
        }
        for inner in [&h.template, &h.inverse].into_iter().flatten() {
            self.template(inner)?;
        }
        Ok(())
    }

    fn arguments(&mut self, h: &HelperTemplate) -> Result<(), NotReusable> {
        for argument in h.params.iter().chain(h.hash.values()) {
            self.argument(argument)?;
        }
        Ok(())
    }

    fn argument(&mut self, argument: &Parameter) -> Result<(), NotReusable> {
        match argument {
            Parameter::Literal(_) => Ok(()),
            Parameter::Subexpression(sub) => match sub.as_element() {
                TemplateElement::Expression(h) if h.params.is_empty() && h.hash.is_empty() => {
                    let path = path_of(&h.name)?;
                    self.note(path, |u| u.other = true);
                    Ok(())
                }
                TemplateElement::Expression(h) => self.arguments(h),
                _ => Err("a subexpression this version does not know"),
            },
            _ => {
                let path = path_of(argument)?;
                self.note(path, |u| u.other = true);
                Ok(())
            }
        }
    }

    fn note(&mut self, path: Vec<String>, mark: impl FnOnce(&mut Uses)) {
        mark(self.uses.entry(path).or_default());
    }
}

/// The named segments of a path from the root context (`this` dropped);
/// `@root`, `../` and local variables are not followed.
fn path_of(parameter: &Parameter) -> Result<Vec<String>, NotReusable> {
    match parameter {
        Parameter::Path(Path::Relative((segments, _))) => segments
            .iter()
            .map(|segment| match segment {
                PathSeg::Named(name) => Ok(name.clone()),
                _ => Err("a path relative to another context"),
            })
            .collect(),
        Parameter::Name(name) => match Path::parse(name) {
            Ok(path) => path_of(&Parameter::Path(path)),
            Err(_) => Err("a name that is not a path"),
        },
        _ => Err("a local variable or an expression where a path was expected"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(source: &str) -> Result<Shape, NotReusable> {
        Shape::of(&[&Template::compile(source).unwrap()], None)
    }

    fn path(p: &str) -> Vec<String> {
        p.split('.').map(str::to_string).collect()
    }

    #[test]
    fn printed_and_tested_values_are_fillable_other_uses_are_not() {
        let s = shape(
            "{{#if person.first_name}}Hi {{person.first_name}}{{else}}Hello{{/if}} \
             {{{links.course}}} {{#if (eq campaign.days_left 1)}}{{campaign.due_date}}{{/if}} \
             {{#if (eq person.role \"Buyer\")}}{{person.role}}{{/if}} {{person.attributes}} \
             {{#if pixel_url}}x{{/if}}",
        )
        .unwrap();
        assert!(s.fillable(&path("person.first_name"), "Ann"));
        assert!(!s.fillable(&path("person.first_name"), ""), "empty");
        assert!(
            !s.fillable(&path("person.first_name"), "Ann\nLee"),
            "two lines"
        );
        assert!(s.fillable(&path("links.course"), "https://x"));
        assert!(s.fillable(&path("campaign.due_date"), "Friday"));
        assert!(
            !s.fillable(&path("person.role"), "Buyer"),
            "a helper's argument"
        );
        assert!(
            !s.fillable(&path("person.attributes.site"), "A"),
            "its container is printed"
        );
        assert!(
            !s.fillable(&path("pixel_url"), "https://x"),
            "tested, never printed"
        );
        assert!(!s.fillable(&path("person.email"), "a@b.org"), "not named");
        assert!(!s.names(&path("person.email")));
        assert!(s.names(&path("person.attributes.site")) && s.names(&path("person")));
    }

    #[test]
    fn context_changing_blocks_and_unknown_partials_are_not_reused() {
        assert!(shape("{{#each overdue}}{{full_name}}{{/each}}").is_err());
        assert!(shape("{{#with person}}{{email}}{{/with}}").is_err());
        assert!(shape("{{> other}}").is_err());
        assert!(shape("{{../x}}").is_err());
        assert!(shape("{{@root.person.email}}").is_err());
        assert!(shape("\u{FDD0}").is_err());
        assert!(shape("{{#*inline \"why\"}}{{person.email}}{{/inline}}{{> why}}").is_ok());
    }

    #[test]
    fn an_indented_partial_is_reused() {
        let s = shape("{{#*inline \"p\"}}{{person.email}}{{/inline}}\n  {{> p}}\n").unwrap();
        assert!(s.fillable(&path("person.email"), "a@b.org"));
    }
}
