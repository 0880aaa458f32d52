//! The request as the core sees it: method, path and headers, nothing from the host.
//!
//! The glue builds a [`RequestHead`] from the host's header map (pseudo-headers included);
//! header names are compared lower-case, as HTTP/2 and Envoy carry them.

pub mod header_name;
pub mod path;
pub mod spelling;
pub mod upgrade;

/// Method, path and every header of a request, in arrival order.
#[derive(Debug, Clone, Default)]
pub struct RequestHead {
    headers: Vec<(String, String)>,
}

impl RequestHead {
    /// A request from its header pairs, pseudo-headers (`:method`, `:path`) included.
    /// Names are lower-cased here so lookups need not care.
    pub fn new<N: Into<String>, V: Into<String>>(
        headers: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let headers = headers
            .into_iter()
            .map(|(name, value)| {
                let mut name: String = name.into();
                name.make_ascii_lowercase();
                (name, value.into())
            })
            .collect();
        RequestHead { headers }
    }

    /// Every value of header `name` (lower-case), in order.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(have, _)| have == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every value of each header whose (lower-case) name passes `wanted`, in order.
    pub fn values_where<'a>(
        &'a self,
        wanted: impl Fn(&str) -> bool + 'a,
    ) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(have, _)| wanted(have))
            .map(|(_, value)| value.as_str())
    }

    /// Every `(name, value)` of each header whose (lower-case) name passes `wanted`, in
    /// order.
    pub fn pairs_where<'a>(
        &'a self,
        wanted: impl Fn(&str) -> bool + 'a,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.headers
            .iter()
            .filter(move |(have, _)| wanted(have))
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// The name (lower-case) of every header that passes `wanted`, in order of arrival,
    /// once per header (a repeated name comes again).
    pub fn names_where<'a>(
        &'a self,
        wanted: impl Fn(&str) -> bool + 'a,
    ) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(move |name| wanted(name))
    }

    /// The first value of header `name` (lower-case).
    pub fn first(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(have, _)| have == name)
            .map(|(_, value)| value.as_str())
    }

    /// `:method`, or `""`.
    pub fn method(&self) -> &str {
        self.first(":method").unwrap_or_default()
    }

    /// `:path` without its query string or fragment, or `""`.
    pub fn path(&self) -> &str {
        path_only(self.first(":path").unwrap_or_default())
    }
}

/// A `:path` value without its query string or fragment.
pub fn path_only(full: &str) -> &str {
    full.split(['?', '#']).next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_drops_query_and_fragment() {
        let head = RequestHead::new([(":path", "/ws?access_token=x#frag"), (":method", "GET")]);
        assert_eq!(head.path(), "/ws");
        assert_eq!(head.method(), "GET");
        assert_eq!(RequestHead::default().path(), "");
    }

    #[test]
    fn names_are_case_insensitive_and_repeats_kept() {
        let head = RequestHead::new([("Authorization", "a"), ("authorization", "b")]);
        assert_eq!(head.values("authorization").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(head.first("authorization"), Some("a"));
    }
}
