//! lvslab-vm
