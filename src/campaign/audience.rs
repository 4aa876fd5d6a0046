//! Who a campaign enrols.

use super::definition::{Audience, AudienceField};
use crate::store::campaign::Candidate;

impl Audience {
    /// True when the person matches every `include` field (if any) and no `exclude` value.
    pub fn matches(&self, person: &Candidate) -> bool {
        let value = |field: &AudienceField| match field {
            AudienceField::Department => person.department.as_str(),
            AudienceField::Role => person.role.as_str(),
            AudienceField::Facility => person.facility.as_str(),
        };
        let listed = |field: &AudienceField, values: &Vec<String>| {
            let v = value(field).trim();
            values.iter().any(|x| x.trim().eq_ignore_ascii_case(v))
        };
        self.include.iter().all(|(f, vs)| listed(f, vs))
            && !self.exclude.iter().any(|(f, vs)| listed(f, vs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn person(department: &str, role: &str) -> Candidate {
        Candidate {
            id: 1,
            department: department.into(),
            role: role.into(),
            facility: "Main".into(),
            attributes: "{}".into(),
            ..Candidate::default()
        }
    }

    #[test]
    fn include_and_exclude_combine() {
        let audience = Audience {
            include: BTreeMap::from([(AudienceField::Department, vec!["Supply Chain".into()])]),
            exclude: BTreeMap::from([(AudienceField::Role, vec!["Contractor".into()])]),
        };
        assert!(audience.matches(&person("supply chain", "Buyer")));
        assert!(!audience.matches(&person("Supply Chain", "Contractor")));
        assert!(!audience.matches(&person("Nursing", "Buyer")));
    }

    #[test]
    fn an_empty_audience_is_everyone() {
        assert!(Audience::default().matches(&person("Nursing", "RN")));
    }
}
