//! A writer for the "newc" cpio format, the one the kernel unpacks as an initramfs.
//! Writing it here means building the initramfs needs neither `cpio` nor root (device
//! nodes are just header fields).

/// One entry of the archive.
pub enum Entry<'a> {
    /// A directory.
    Dir { path: &'a str, mode: u32 },
    /// A regular file with its contents.
    File {
        path: &'a str,
        mode: u32,
        data: &'a [u8],
    },
    /// A character device node.
    CharDev {
        path: &'a str,
        mode: u32,
        major: u32,
        minor: u32,
    },
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFCHR: u32 = 0o020000;

/// Builds an archive in memory from entries, parents before children.
#[derive(Default)]
pub struct Archive {
    bytes: Vec<u8>,
    next_inode: u32,
}

impl Archive {
    /// Appends one entry.
    pub fn push(&mut self, entry: &Entry<'_>) {
        let (path, mode, data, rdev) = match *entry {
            Entry::Dir { path, mode } => (path, S_IFDIR | mode, &[][..], (0, 0)),
            Entry::File { path, mode, data } => (path, S_IFREG | mode, data, (0, 0)),
            Entry::CharDev {
                path,
                mode,
                major,
                minor,
            } => (path, S_IFCHR | mode, &[][..], (major, minor)),
        };
        self.next_inode += 1;
        let nlink = if mode & S_IFDIR != 0 { 2 } else { 1 };
        self.header(self.next_inode, mode, nlink, data.len(), rdev, path);
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    /// Ends the archive and returns its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.header(0, 0, 1, 0, (0, 0), "TRAILER!!!");
        self.bytes
    }

    fn header(
        &mut self,
        inode: u32,
        mode: u32,
        nlink: u32,
        size: usize,
        rdev: (u32, u32),
        name: &str,
    ) {
        let name_size = name.len() + 1;
        // The kernel's parser reads 32-bit fields; an initramfs member never nears 4 GiB.
        let size = u32::try_from(size).unwrap_or(u32::MAX);
        let fields = [
            inode,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime
            size,
            0, // dev major
            0, // dev minor
            rdev.0,
            rdev.1,
            u32::try_from(name_size).unwrap_or(u32::MAX),
            0, // check
        ];
        self.bytes.extend_from_slice(b"070701");
        for field in fields {
            self.bytes
                .extend_from_slice(format!("{field:08X}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
    }

    fn pad(&mut self) {
        while self.bytes.len() % 4 != 0 {
            self.bytes.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Archive, Entry};

    fn field(bytes: &[u8], index: usize) -> u32 {
        let start = 6 + index * 8;
        let text = std::str::from_utf8(&bytes[start..start + 8]).expect("hex is ASCII");
        u32::from_str_radix(text, 16).expect("field is hex")
    }

    #[test]
    fn file_entry_layout_follows_newc() {
        let mut archive = Archive::default();
        archive.push(&Entry::File {
            path: "init",
            mode: 0o755,
            data: b"abc",
        });
        let bytes = archive.finish();
        assert_eq!(&bytes[..6], b"070701");
        assert_eq!(field(&bytes, 1), 0o100755, "mode");
        assert_eq!(field(&bytes, 6), 3, "file size");
        assert_eq!(field(&bytes, 11), 5, "name size counts the NUL");
        // 110-byte header + "init\0" = 115, padded to 116; then data padded to 4.
        assert_eq!(&bytes[110..115], b"init\0");
        assert_eq!(&bytes[116..119], b"abc");
        assert_eq!(bytes[119], 0);
        let trailer = &bytes[120..];
        assert_eq!(&trailer[110..121], b"TRAILER!!!\0");
        assert_eq!(bytes.len() % 4, 0);
    }

    #[test]
    fn device_node_carries_its_numbers() {
        let mut archive = Archive::default();
        archive.push(&Entry::CharDev {
            path: "dev/console",
            mode: 0o600,
            major: 5,
            minor: 1,
        });
        let bytes = archive.finish();
        assert_eq!(field(&bytes, 1), 0o020600);
        assert_eq!(field(&bytes, 9), 5);
        assert_eq!(field(&bytes, 10), 1);
    }
}
