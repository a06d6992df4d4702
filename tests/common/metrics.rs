//! Prometheus text scrapes of `/metrics`, parsed ([`Metrics`]), and the series that moved
//! between two of them ([`changes`]).

use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Clone)]
pub struct Metrics {
    pub samples: Vec<Sample>,
    pub text: String,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let samples = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| parse_sample(l).unwrap_or_else(|| panic!("bad metrics line {l:?}")))
            .collect();
        Metrics {
            samples,
            text: text.to_string(),
        }
    }

    /// The samples of `name` whose labels include `labels`, in scrape order.
    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).is_some_and(|x| x == v))
        })
    }

    /// The sample of `name` whose label set is exactly `labels`.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.matching(name, labels)
            .find(|s| s.labels.len() == labels.len())
            .map(|s| s.value)
    }

    /// The first sample of `name` whose labels include `labels`.
    pub fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.matching(name, labels).next().map(|s| s.value)
    }

    /// Every sample of `name` added up.
    pub fn total(&self, name: &str) -> f64 {
        self.matching(name, &[]).map(|s| s.value).sum()
    }

    /// `get`, 0 when absent (counters not yet created).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }
}

fn parse_sample(line: &str) -> Option<Sample> {
    let (head, value) = line.trim().rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let (name, labels) = match head.find('{') {
        None => (head.to_string(), BTreeMap::new()),
        Some(i) => {
            let body = head[i + 1..].strip_suffix('}')?;
            (head[..i].to_string(), parse_labels(body)?)
        }
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

fn parse_labels(body: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut chars = body.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || *c == ' ') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if chars.next()? != '"' {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '\\' => match chars.next()? {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.insert(key.trim().to_string(), value);
    }
}

/// A series: family name and its exact label set.
pub type SeriesKey = (String, BTreeMap<String, String>);

/// Every series of `families` whose value differs between two scrapes, with its delta (series
/// absent from `before` count from 0).
pub fn changes(before: &Metrics, after: &Metrics, families: &[&str]) -> BTreeMap<SeriesKey, f64> {
    let mut out = BTreeMap::new();
    for s in after
        .samples
        .iter()
        .filter(|s| families.contains(&s.name.as_str()))
    {
        let old = before
            .samples
            .iter()
            .find(|b| b.name == s.name && b.labels == s.labels)
            .map_or(0.0, |b| b.value);
        if s.value != old {
            out.insert((s.name.clone(), s.labels.clone()), s.value - old);
        }
    }
    out
}

/// Builds a [`SeriesKey`].
pub fn series(name: &str, labels: &[(&str, &str)]) -> SeriesKey {
    (
        name.to_string(),
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}
