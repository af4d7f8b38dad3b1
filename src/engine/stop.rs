//! Stop strings for streamed text: text that may still become a stop string is held back until
//! it either completes one (generation ends, the stop string is dropped) or cannot any more.

/// Holds back the tail of the stream that is a prefix of some stop string.
#[derive(Debug, Clone, Default)]
pub struct StopFilter {
    stops: Vec<String>,
    held: String,
}

/// What to do with one pushed piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filtered {
    /// Emit this text (may be empty) and continue.
    Continue(String),
    /// Emit this text, then end: a stop string was produced.
    Stop(String),
}

impl StopFilter {
    /// A filter for these stop strings (empty strings are ignored).
    pub fn new(stops: &[String]) -> Self {
        Self {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            held: String::new(),
        }
    }

    /// Add generated text; returns what may be shown now.
    pub fn push(&mut self, piece: &str) -> Filtered {
        self.held.push_str(piece);
        if self.stops.is_empty() {
            return Filtered::Continue(std::mem::take(&mut self.held));
        }
        if let Some(at) = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min()
        {
            let out = self.held[..at].to_string();
            self.held.clear();
            return Filtered::Stop(out);
        }
        let keep = self.longest_partial_suffix();
        let cut = self.held.len() - keep;
        let out = self.held[..cut].to_string();
        self.held.drain(..cut);
        Filtered::Continue(out)
    }

    /// The end of the stream: release what was held back.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// Length in bytes of the longest suffix of `held` that is a proper prefix of a stop string
    /// (always on a char boundary).
    fn longest_partial_suffix(&self) -> usize {
        let mut best = 0;
        for (start, _) in self.held.char_indices() {
            let suffix = &self.held[start..];
            if self.stops.iter().any(|s| s.starts_with(suffix)) {
                best = best.max(suffix.len());
                break; // earlier start = longer suffix
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(stops: &[&str]) -> StopFilter {
        StopFilter::new(&stops.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn without_stop_strings_everything_passes_at_once() {
        let mut f = filter(&[]);
        assert_eq!(f.push("hello"), Filtered::Continue("hello".into()));
    }

    #[test]
    fn a_stop_string_inside_one_piece_cuts_the_text_before_it() {
        let mut f = filter(&["User:"]);
        assert_eq!(f.push("fine. User: hi"), Filtered::Stop("fine. ".into()));
    }

    #[test]
    fn a_stop_string_split_across_pieces_is_held_back_then_dropped() {
        let mut f = filter(&["User:"]);
        assert_eq!(f.push("ok Us"), Filtered::Continue("ok ".into()));
        assert_eq!(f.push("er"), Filtered::Continue(String::new()));
        assert_eq!(f.push(":"), Filtered::Stop(String::new()));
    }

    #[test]
    fn held_text_is_released_when_it_stops_matching() {
        let mut f = filter(&["User:"]);
        assert_eq!(f.push("Us"), Filtered::Continue(String::new()));
        assert_eq!(f.push("ually"), Filtered::Continue("Usually".into()));
    }

    #[test]
    fn finish_releases_a_held_partial_match() {
        let mut f = filter(&["###"]);
        assert_eq!(f.push("a #"), Filtered::Continue("a ".into()));
        assert_eq!(f.finish(), "#");
    }

    #[test]
    fn the_earliest_of_several_stop_strings_wins() {
        let mut f = filter(&["BBB", "A"]);
        assert_eq!(f.push("xBBBA"), Filtered::Stop("x".into()));
    }

    #[test]
    fn multibyte_text_is_never_split_inside_a_char() {
        let mut f = filter(&["éé!"]);
        assert_eq!(f.push("café"), Filtered::Continue("caf".into()));
        assert_eq!(f.push("s"), Filtered::Continue("és".into()));
    }
}
