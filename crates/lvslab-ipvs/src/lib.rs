//! lvslab-ipvs
