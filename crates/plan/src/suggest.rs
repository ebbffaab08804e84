//! "Did you mean …?": the closest known name to a misspelt one.

/// The candidate closest to `wrong`, when it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    wrong: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let wrong_lower = wrong.to_lowercase();
    let mut best: Option<(f64, &'a str)> = None;
    for candidate in candidates {
        let score = strsim::jaro_winkler(&wrong_lower, &candidate.to_lowercase());
        let close_edit = strsim::damerau_levenshtein(&wrong_lower, &candidate.to_lowercase()) <= 2
            && candidate.len() > 2;
        if (score >= 0.8 || close_edit) && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// The help text for a name that does not resolve among `known` things of `kind`.
pub fn unknown_help<'a>(
    wrong: &str,
    kind: &str,
    section: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> String {
    let known: Vec<&str> = known.into_iter().collect();
    match did_you_mean(wrong, known.iter().copied()) {
        Some(best) => format!("did you mean `{best}`?"),
        None if known.is_empty() => format!("no {kind} is defined; add one under `{section}`"),
        None if known.len() <= 12 => format!(
            "define it under `{section}` or use one of: {}",
            known.join(", ")
        ),
        None => format!("define it under `{section}`, or use an id that is defined there"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(did_you_mean("nmae", ["id", "name", "phone"]), Some("name"));
        assert_eq!(
            did_you_mean("sre_lead", ["sre-lead", "release_manager"]),
            Some("sre-lead")
        );
        assert_eq!(did_you_mean("zzz", ["name", "phone"]), None);
        assert_eq!(
            did_you_mean("go_nogo", ["go_no_go", "waive"]),
            Some("go_no_go")
        );
    }
}
