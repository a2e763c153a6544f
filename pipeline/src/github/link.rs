//! The `Link` response header of a paged GitHub listing: where the next page is.

/// The `rel="next"` target of a `Link` header, if any.
///
/// GitHub writes `<https://api.github.com/app/hook/deliveries?per_page=100&cursor=v1_1>;
/// rel="next", <...>; rel="first"`; the order of the entries and of their parameters varies.
pub fn next_url(header: &str) -> Option<&str> {
    header.split(',').find_map(|entry| {
        let (target, params) = entry.trim().split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .filter_map(|p| p.trim().split_once('='))
            .any(|(k, v)| k.trim() == "rel" && v.trim().trim_matches('"') == "next")
            .then_some(target)
    })
}

/// The value of query parameter `name` in `url` (percent-decoded).
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    parsed
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_next_among_other_relations_in_any_order() {
        let header = r#"<https://api.github.com/app/hook/deliveries?per_page=100&cursor=v1_9>; rel="first", <https://api.github.com/app/hook/deliveries?cursor=v1_5%3D&per_page=100>; rel="next""#;
        let next = next_url(header).unwrap();
        assert_eq!(query_param(next, "cursor").as_deref(), Some("v1_5="));
        assert_eq!(next_url(r#"<https://x/y?cursor=a>; rel="prev""#), None);
        assert_eq!(next_url(""), None);
        assert_eq!(next_url("garbage; rel=next"), None);
    }
}
