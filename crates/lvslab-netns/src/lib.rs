//! lvslab-netns
