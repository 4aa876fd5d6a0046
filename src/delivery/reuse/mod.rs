//! Reuse of what a step's message says to everyone. The person's values
//! (the parts of a [`MessageContext`] listed in [`PER_MESSAGE`] that the
//! template only prints) are swapped for marks, those it never names are
//! dropped, and the rest of the context is the cache key. A key's first message renders the templates once with the
//! marks and encodes the lines around them; every later message with the same
//! key only fills its values in and encodes the lines that hold them.
//!
//! The output is byte for byte what a whole render gives: the cached render
//! is the render of exactly the key's context, a mark is printed where the
//! value would be (escaped the same way) and tests true where it would, and
//! [`crate::delivery::encode`] encodes as lettre does. Anything this cannot
//! vouch for (see [`shape`]) is rendered whole, as is any render that fails,
//! so errors read as before. The cache belongs to one [`Templates`]: a
//! template reload starts a new one.

mod shape;
mod skeleton;

use super::context::{MessageContext, PER_MESSAGE};
use super::templates::{one_line, EncodedEmail, Templates};
use serde_json::Value;
use shape::Shape;
use skeleton::{BodySkeleton, Piece};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Keys kept at most; past this the cache starts again (a template that
/// keys on something personal would otherwise grow it without end).
const MAX_KEYS: usize = 256;

/// The rendered, encoded parts of one template for one key.
#[derive(Debug)]
struct Skeleton {
    subject: Vec<Piece>,
    html: BodySkeleton,
    text: BodySkeleton,
}

/// Cached renders by template name and key; `None`: that key's render could not be cut.
type Skeletons = HashMap<(String, String), Option<Arc<Skeleton>>>;

/// The cache of one set of templates.
#[derive(Default)]
pub struct Reuse {
    /// Per template name: what it does with values, or `None`: render it whole.
    shapes: Mutex<HashMap<String, Option<Arc<Shape>>>>,
    skeletons: Mutex<Skeletons>,
}

impl std::fmt::Debug for Reuse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = self.skeletons.lock().map(|s| s.len()).unwrap_or(0);
        f.debug_struct("Reuse").field("keys", &keys).finish()
    }
}

impl Reuse {
    /// The message's parts from the cache (built on first use); `None` when
    /// the template is to be rendered whole.
    pub fn render(
        &self,
        templates: &Templates,
        name: &str,
        context: &MessageContext,
    ) -> Option<EncodedEmail> {
        let shape = self.shape(templates, name)?;
        let mut key = serde_json::to_value(context).ok()?;
        let values = mark_values(&shape, &mut key);
        if values.is_empty() {
            return None;
        }
        let skeleton = self.skeleton(templates, name, &key, values.len())?;
        Some(EncodedEmail {
            subject: one_line(&skeleton::fill(&skeleton.subject, &values)),
            html: skeleton.html.fill(&values),
            text: skeleton.text.fill(&values),
        })
    }

    /// Keys that have a usable render cached.
    pub fn keys(&self) -> usize {
        self.lock().values().filter(|s| s.is_some()).count()
    }

    fn shape(&self, templates: &Templates, name: &str) -> Option<Arc<Shape>> {
        let mut shapes = self.shapes.lock().unwrap_or_else(|e| e.into_inner());
        shapes
            .entry(name.to_string())
            .or_insert_with(|| {
                let (parts, layout) = templates.parsed(name)?;
                match Shape::of(&parts, layout) {
                    Ok(shape) => Some(Arc::new(shape)),
                    Err(why) => {
                        tracing::debug!(
                            template = name,
                            why,
                            "template rendered whole for every message"
                        );
                        None
                    }
                }
            })
            .clone()
    }

    fn skeleton(
        &self,
        templates: &Templates,
        name: &str,
        key: &Value,
        values: usize,
    ) -> Option<Arc<Skeleton>> {
        let key_text = serde_json::to_string(key).ok()?;
        let cache_key = (name.to_string(), key_text);
        if let Some(found) = self.lock().get(&cache_key) {
            return found.clone();
        }
        // Rendered outside the lock; two first messages of a key may both render.
        let built = build(templates, name, key, values).map(Arc::new);
        let mut skeletons = self.lock();
        if skeletons.len() >= MAX_KEYS {
            skeletons.clear();
        }
        skeletons.insert(cache_key, built.clone());
        built
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Skeletons> {
        self.skeletons.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn build(templates: &Templates, name: &str, key: &Value, values: usize) -> Option<Skeleton> {
    let rendered = templates.render_unlined(name, key).ok()?;
    Some(Skeleton {
        subject: skeleton::cut(&rendered.subject, values)?,
        html: BodySkeleton::new(skeleton::cut(&rendered.html, values)?),
        text: BodySkeleton::new(skeleton::cut(&rendered.text, values)?),
    })
}

/// Swaps each fillable value under [`PER_MESSAGE`] for its mark and drops
/// the ones the template does not name (the key would differ for nothing);
/// returns the values.
fn mark_values(shape: &Shape, context: &mut Value) -> Vec<String> {
    let mut values = Vec::new();
    for root in PER_MESSAGE {
        let mut path: Vec<String> = root.iter().map(|s| s.to_string()).collect();
        let (last, parents) = root.split_last().expect("a path has a name");
        let parent = parents
            .iter()
            .try_fold(&mut *context, |node, name| node.get_mut(*name));
        let Some(Value::Object(parent)) = parent else {
            continue;
        };
        let keep = match parent.get_mut(*last) {
            Some(node) => mark_under(shape, &mut path, node, &mut values),
            None => true,
        };
        if !keep {
            parent.remove(*last);
        }
    }
    values
}

/// Marks what is fillable at or under `node`; false when the template
/// does not name `node` at all (the caller drops it).
fn mark_under(
    shape: &Shape,
    path: &mut Vec<String>,
    node: &mut Value,
    values: &mut Vec<String>,
) -> bool {
    if !shape.names(path) {
        return false;
    }
    match node {
        Value::String(text) if shape.fillable(path, text) => {
            let mark = skeleton::mark(values.len());
            values.push(std::mem::replace(text, mark));
        }
        Value::Object(fields) => fields.retain(|name, child| {
            path.push(name.clone());
            let keep = mark_under(shape, path, child, values);
            path.pop();
            keep
        }),
        _ => {}
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Language;

    #[test]
    fn the_shipped_staff_templates_are_reused_and_the_lists_are_not() {
        for language in [Language::EnUs, Language::EnGb] {
            let templates = Templates::load_in(language, None).unwrap();
            for name in ["news_item", "reminder", "thanks"] {
                let (parts, layout) = templates.parsed(name).unwrap();
                if let Err(why) = Shape::of(&parts, layout) {
                    panic!("{name} is not reused: {why}");
                }
            }
            for name in ["escalation", "team_digest", "weekly_summary"] {
                let (parts, layout) = templates.parsed(name).unwrap();
                assert!(Shape::of(&parts, layout).is_err(), "{name}");
            }
        }
    }
}
