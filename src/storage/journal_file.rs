//! The journal's files: entries appended to files of their own beside sled, each made
//! durable by one `fdatasync` of the committer's thread. sled is flushed only at
//! checkpoints; until then these files hold what every acknowledged event step did.
//!
//! Files are named after the first sequence number they may hold (`00000000000000000042.journal`)
//! and hold records `[length u32][crc32 u32][seq u64][entry]` (little endian; the crc
//! covers seq and entry). A crash can leave the last file with a torn record: opening
//! the writer cuts it off (it was never acknowledged). A bad record anywhere else is
//! corruption and is reported, never skipped.
//!
//! Files are written full of zeros before they are used (a spare is made ready on a
//! thread of its own), so an append changes no file size and `fdatasync` writes the
//! data alone, not the inode too: one disk write fewer per group. Zeros end a file.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use super::StorageError;

/// A file is closed and a new one started once it holds this many bytes.
const MAX_FILE_BYTES: u64 = 8 << 20;

/// Bytes before an entry: its length, checksum and sequence number.
const HEADER: usize = 16;

/// The most bytes one entry may have (a corrupt length never allocates more).
const MAX_ENTRY_BYTES: usize = 1 << 30;

const SUFFIX: &str = ".journal";

fn io(context: &str, path: &Path, e: std::io::Error) -> StorageError {
    StorageError::Journal(format!("{context} `{}`: {e}", path.display()))
}

fn file_name(first_seq: u64) -> String {
    format!("{first_seq:020}{SUFFIX}")
}

/// The first sequence number a journal file may hold, read from its name.
fn first_seq_of(path: &Path) -> Option<u64> {
    path.file_name()?
        .to_str()?
        .strip_suffix(SUFFIX)?
        .parse()
        .ok()
}

/// The journal files in `dir`, by first sequence number.
fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StorageError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("cannot list the journal", dir, e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| io("cannot list the journal", dir, e))?
            .path();
        if let Some(first) = first_seq_of(&path) {
            files.push((first, path));
        }
    }
    files.sort_unstable();
    Ok(files)
}

/// One record read back.
enum Record {
    /// An entry, and the offset after it.
    Entry {
        seq: u64,
        entry: Vec<u8>,
        end: usize,
    },
    /// The bytes from here on are not a whole record.
    Torn,
    /// The end of the file.
    End,
}

fn record_at(bytes: &[u8], at: usize) -> Record {
    let Some(header) = bytes.get(at..at + HEADER) else {
        return if bytes[at.min(bytes.len())..].iter().all(|byte| *byte == 0) {
            Record::End
        } else {
            Record::Torn
        };
    };
    if header.iter().all(|byte| *byte == 0) {
        // The zeros a file was made with: no record was written here.
        return Record::End;
    }
    let word = |range: std::ops::Range<usize>| header.get(range).unwrap_or_default();
    let length = u32::from_le_bytes(word(0..4).try_into().unwrap_or_default()) as usize;
    let crc = u32::from_le_bytes(word(4..8).try_into().unwrap_or_default());
    let seq = u64::from_le_bytes(word(8..16).try_into().unwrap_or_default());
    let end = at + HEADER + length;
    let Some(entry) = bytes
        .get(at + HEADER..end)
        .filter(|_| length <= MAX_ENTRY_BYTES)
    else {
        return Record::Torn;
    };
    if checksum(seq, entry) != crc {
        return Record::Torn;
    }
    Record::Entry {
        seq,
        entry: entry.to_vec(),
        end,
    }
}

fn checksum(seq: u64, entry: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&seq.to_le_bytes());
    hasher.update(entry);
    hasher.finalize()
}

fn read_file(path: &Path) -> Result<Vec<u8>, StorageError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut file| file.read_to_end(&mut bytes))
        .map_err(|e| io("cannot read journal file", path, e))?;
    Ok(bytes)
}

/// Reads every entry in `dir`, in order: `(seq, entry)`. A torn record ends the last
/// file (an append in progress, or one a crash cut short); anywhere else it is an error.
pub fn read_entries(dir: &Path) -> Result<Vec<(u64, Vec<u8>)>, StorageError> {
    let files = list(dir)?;
    let mut entries = Vec::new();
    for (index, (_, path)) in files.iter().enumerate() {
        let bytes = read_file(path)?;
        let mut at = 0;
        loop {
            match record_at(&bytes, at) {
                Record::Entry { seq, entry, end } => {
                    entries.push((seq, entry));
                    at = end;
                }
                Record::End => break,
                Record::Torn if index + 1 == files.len() => break,
                Record::Torn => {
                    return Err(StorageError::Journal(format!(
                        "journal file `{}` is corrupt at byte {at}",
                        path.display()
                    )))
                }
            }
        }
    }
    Ok(entries)
}

/// Returns whether `dir` holds no journal entry (reading only each file's first
/// header: a file that starts with anything but zeros counts as holding one).
pub fn is_empty(dir: &Path) -> Result<bool, StorageError> {
    for (_, path) in list(dir)? {
        let mut header = Vec::with_capacity(HEADER);
        File::open(&path)
            .and_then(|file| file.take(HEADER as u64).read_to_end(&mut header))
            .map_err(|e| io("cannot read journal file", &path, e))?;
        if header.iter().any(|byte| *byte != 0) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The appending end of the journal: the committer's alone.
pub struct JournalFile {
    dir: PathBuf,
    /// Closed files, by first sequence number, oldest first.
    closed: Vec<(u64, PathBuf)>,
    current: File,
    current_path: PathBuf,
    /// The first sequence number the current file may hold (its name).
    current_first: u64,
    /// Bytes in the current file that are whole records.
    current_len: u64,
    /// The sequence number after the last entry.
    next_seq: u64,
    /// Set when a failed append could not be taken back: the file may hold a torn
    /// record, so nothing more is appended after it.
    broken: bool,
    /// The next file, being written full of zeros.
    spare: Option<JoinHandle<Result<File, StorageError>>>,
}

impl JournalFile {
    /// Opens the journal in `dir` (creating it), cutting off a torn record a crash left
    /// at the end of the last file.
    pub fn open(dir: &Path) -> Result<JournalFile, StorageError> {
        fs::create_dir_all(dir).map_err(|e| io("cannot create the journal", dir, e))?;
        let mut files = list(dir)?;
        let mut next_seq = 0;
        let mut current_len = 0;
        let mut torn_bytes = 0;
        if let Some((_, path)) = files.last() {
            let bytes = read_file(path)?;
            let mut at = 0;
            while let Record::Entry { seq, end, .. } = record_at(&bytes, at) {
                next_seq = seq + 1;
                at = end;
            }
            current_len = at as u64;
            let tail = bytes.get(at..).unwrap_or_default();
            if tail.iter().any(|byte| *byte != 0) {
                torn_bytes = tail.len();
                tracing::warn!(
                    file = %path.display(),
                    torn_bytes,
                    "journal ends with a torn record (never acknowledged); cutting it off"
                );
            }
        }
        if next_seq == 0 {
            next_seq = files.iter().map(|(first, _)| *first).max().unwrap_or(0);
        }
        let (current, current_path, current_first) = match files.pop() {
            Some((first, path)) => {
                let mut file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| io("cannot open journal file", &path, e))?;
                end_at(&mut file, current_len, torn_bytes)
                    .map_err(|e| io("cannot cut journal file", &path, e))?;
                (file, path, first)
            }
            None => {
                let (file, path) = install(dir, zeroed(&dir.join(SPARE))?, next_seq)?;
                (file, path, next_seq)
            }
        };
        Ok(JournalFile {
            dir: dir.to_path_buf(),
            closed: files,
            current,
            current_path,
            current_first,
            current_len,
            next_seq,
            broken: false,
            spare: Some(prepare_spare(dir)),
        })
    }

    /// The sequence number after the last entry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Appends entry `seq` and makes it durable before returning.
    pub fn append(&mut self, seq: u64, entry: &[u8]) -> Result<(), StorageError> {
        if self.broken {
            return Err(StorageError::Journal(
                "an earlier append failed and could not be taken back".into(),
            ));
        }
        let record_bytes = (HEADER + entry.len()) as u64;
        if self.current_len > 0 && self.current_len + record_bytes > MAX_FILE_BYTES {
            self.rotate(seq)?;
        }
        let length = u32::try_from(entry.len())
            .ok()
            .filter(|length| *length as usize <= MAX_ENTRY_BYTES)
            .ok_or_else(|| StorageError::Journal("journal entry too large".into()))?;
        let mut record = Vec::with_capacity(HEADER + entry.len());
        record.extend_from_slice(&length.to_le_bytes());
        record.extend_from_slice(&checksum(seq, entry).to_le_bytes());
        record.extend_from_slice(&seq.to_le_bytes());
        record.extend_from_slice(entry);
        let written = self
            .current
            .write_all(&record)
            .and_then(|()| self.current.sync_data());
        if let Err(e) = written {
            // Take the partial record back, so that later entries follow whole ones.
            self.broken = end_at(&mut self.current, self.current_len, record.len()).is_err();
            return Err(io("cannot append to journal file", &self.current_path, e));
        }
        self.current_len += record.len() as u64;
        self.next_seq = seq + 1;
        Ok(())
    }

    /// Deletes the files whose every entry is before `floor` (storage holds what they
    /// said: call only after a flush of sled that covers the snapshots behind `floor`).
    pub fn remove_before(&mut self, floor: u64) -> Result<(), StorageError> {
        // A closed file's entries end where the next file's begin.
        let next_first = |index: usize| {
            self.closed
                .get(index + 1)
                .map_or(self.current_first, |(first, _)| *first)
        };
        let obsolete = (0..self.closed.len())
            .take_while(|index| next_first(*index) <= floor)
            .count();
        for (_, path) in self.closed.drain(..obsolete) {
            remove(&path)?;
        }
        if self.closed.is_empty() && self.next_seq <= floor && self.current_len > 0 {
            // Every entry of the current file is obsolete too: start an empty one.
            self.rotate(self.next_seq)?;
            if let Some((_, path)) = self.closed.pop() {
                remove(&path)?;
            }
        }
        Ok(())
    }

    /// Closes the current file and starts one whose first entry is `first_seq`: the
    /// spare, renamed (made at once if none is ready), while another spare is made.
    fn rotate(&mut self, first_seq: u64) -> Result<(), StorageError> {
        let spare = match self.spare.take() {
            Some(spare) => spare.join().map_err(|_| {
                StorageError::Journal("the thread making a spare journal file panicked".into())
            })?,
            None => zeroed(&self.dir.join(SPARE)),
        };
        let (file, path) = install(&self.dir, spare?, first_seq)?;
        self.spare = Some(prepare_spare(&self.dir));
        let old_path = std::mem::replace(&mut self.current_path, path);
        self.closed.push((self.current_first, old_path));
        self.current_first = first_seq;
        self.current = file;
        self.current_len = 0;
        Ok(())
    }
}

impl Drop for JournalFile {
    fn drop(&mut self) {
        // A spare being made is finished, so nothing writes in the directory after.
        if let Some(spare) = self.spare.take() {
            let _finished = spare.join();
        }
    }
}

/// Makes `file` end at `at`: zeros over the `torn` bytes after it (the file keeps its
/// size, so later syncs still write no inode), then the write position back at `at`.
fn end_at(file: &mut File, at: u64, torn: usize) -> std::io::Result<()> {
    if torn > 0 {
        file.seek(SeekFrom::Start(at))?;
        file.write_all(&vec![0; torn])?;
        file.sync_data()?;
    }
    file.seek(SeekFrom::Start(at))?;
    Ok(())
}

fn remove(path: &Path) -> Result<(), StorageError> {
    fs::remove_file(path).map_err(|e| io("cannot remove journal file", path, e))
}

/// The name of the spare file (not a journal file until it is renamed).
const SPARE: &str = "spare.journal.tmp";

/// Writes `path` full of zeros (`MAX_FILE_BYTES`) and makes that durable.
fn zeroed(path: &Path) -> Result<File, StorageError> {
    let zeros = vec![0u8; 1 << 20];
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .map_err(|e| io("cannot create journal file", path, e))?;
    let mut written = 0;
    while written < MAX_FILE_BYTES {
        file.write_all(&zeros)
            .map_err(|e| io("cannot fill journal file", path, e))?;
        written += zeros.len() as u64;
    }
    file.sync_all()
        .map_err(|e| io("cannot sync journal file", path, e))?;
    Ok(file)
}

/// Makes a spare on a thread of its own.
fn prepare_spare(dir: &Path) -> JoinHandle<Result<File, StorageError>> {
    let path = dir.join(SPARE);
    std::thread::spawn(move || zeroed(&path))
}

/// Renames the spare `file` into journal file `first_seq` and makes its name durable;
/// returns it ready to append from the start.
fn install(dir: &Path, mut file: File, first_seq: u64) -> Result<(File, PathBuf), StorageError> {
    let path = dir.join(file_name(first_seq));
    fs::rename(dir.join(SPARE), &path).map_err(|e| io("cannot name journal file", &path, e))?;
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| io("cannot sync the journal directory", dir, e))?;
    file.seek(SeekFrom::Start(0))
        .map_err(|e| io("cannot seek journal file", &path, e))?;
    Ok((file, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<(u64, Vec<u8>)> {
        read_entries(dir).unwrap()
    }

    fn files(dir: &Path) -> Vec<u64> {
        list(dir)
            .unwrap()
            .into_iter()
            .map(|(first, _)| first)
            .collect()
    }

    #[test]
    fn entries_come_back_in_order_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        assert!(is_empty(dir.path()).unwrap());
        let mut journal = JournalFile::open(dir.path()).unwrap();
        assert_eq!(journal.next_seq(), 0);
        journal.append(0, b"first").unwrap();
        journal.append(1, b"").unwrap();
        journal.append(5, b"third").unwrap();
        drop(journal);
        let journal = JournalFile::open(dir.path()).unwrap();
        assert_eq!(journal.next_seq(), 6);
        let path = &list(dir.path()).unwrap()[0].1;
        assert_eq!(
            fs::metadata(path).unwrap().len(),
            MAX_FILE_BYTES,
            "a reopened file keeps its zeros"
        );
        let expected = vec![
            (0, b"first".to_vec()),
            (1, Vec::new()),
            (5, b"third".to_vec()),
        ];
        assert_eq!(entries(dir.path()), expected);
        assert!(!is_empty(dir.path()).unwrap());
    }

    #[test]
    fn a_torn_record_at_the_end_is_cut_off_and_appends_follow_whole_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = JournalFile::open(dir.path()).unwrap();
        journal.append(0, b"kept").unwrap();
        journal.append(1, b"torn by a crash").unwrap();
        drop(journal);
        let path = list(dir.path()).unwrap().remove(0).1;
        let whole = (HEADER + 4 + HEADER + 15) as u64;
        for cut in [whole - 1, whole - 10, whole - 15 - 4] {
            let file = OpenOptions::new().write(true).open(&path).unwrap();
            file.set_len(cut).unwrap();
            drop(file);
            assert_eq!(
                entries(dir.path()),
                vec![(0, b"kept".to_vec())],
                "cut at {cut}"
            );
        }
        let mut journal = JournalFile::open(dir.path()).unwrap();
        assert_eq!(journal.next_seq(), 1);
        journal.append(1, b"again").unwrap();
        let expected = vec![(0, b"kept".to_vec()), (1, b"again".to_vec())];
        assert_eq!(entries(dir.path()), expected);
    }

    #[test]
    fn a_flipped_byte_in_an_older_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = JournalFile::open(dir.path()).unwrap();
        journal.append(0, b"older").unwrap();
        journal.rotate(1).unwrap();
        journal.append(1, b"newer").unwrap();
        drop(journal);
        let path = list(dir.path()).unwrap().remove(0).1;
        let mut bytes = fs::read(&path).unwrap();
        bytes[HEADER] ^= 1;
        fs::write(&path, bytes).unwrap();
        let error = read_entries(dir.path()).unwrap_err().to_string();
        assert!(error.contains("corrupt at byte 0"), "{error}");
    }

    #[test]
    fn files_go_once_the_floor_passes_every_entry_in_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = JournalFile::open(dir.path()).unwrap();
        for seq in 0..3 {
            journal.append(seq, b"a").unwrap();
        }
        journal.rotate(3).unwrap();
        for seq in 3..6 {
            journal.append(seq, b"b").unwrap();
        }
        journal.rotate(6).unwrap();
        journal.append(6, b"c").unwrap();
        assert_eq!(files(dir.path()), vec![0, 3, 6]);
        journal.remove_before(3).unwrap();
        assert_eq!(files(dir.path()), vec![3, 6], "entry 3 is still needed");
        journal.remove_before(5).unwrap();
        assert_eq!(files(dir.path()), vec![3, 6]);
        journal.remove_before(6).unwrap();
        assert_eq!(files(dir.path()), vec![6]);
        assert_eq!(entries(dir.path()), vec![(6, b"c".to_vec())]);
        journal.remove_before(7).unwrap();
        assert_eq!(
            files(dir.path()),
            vec![7],
            "an obsolete current file is replaced"
        );
        assert!(is_empty(dir.path()).unwrap());
        journal.append(7, b"d").unwrap();
        drop(journal);
        assert_eq!(JournalFile::open(dir.path()).unwrap().next_seq(), 8);
    }

    #[test]
    fn a_full_file_is_closed_and_a_new_one_started() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = JournalFile::open(dir.path()).unwrap();
        journal.append(0, b"a").unwrap();
        journal.current_len = MAX_FILE_BYTES;
        journal.append(1, b"b").unwrap();
        assert_eq!(files(dir.path()), vec![0, 1]);
    }
}
