// Package state keeps the checkpoint of a copy job: which source messages
// are done and where they went.
//
// # The checkpoint is an accelerator
//
// Losing it, or any suffix of it, costs time but never correctness: a run
// that does not find a source message in the checkpoint lists the
// destination folder and deduplicates against what is there (by Message-ID
// or content hash, see package plan), so a message already copied is found
// and not copied again.
//
// # Ordering rules
//
// These are the rules every writer follows; the code refers to them by
// number.
//
//  1. A source record names only a message that is durable at the
//     destination: Add is called only after sink.Put returned nil, which
//     by the sink contract means the message survives a crash.
//  2. Records are committed in batches (every CommitInterval or
//     CommitBatch records, whichever comes first). Each batch is one bbolt
//     transaction: it becomes visible whole, and fsynced, or not at all.
//     A crash loses at most the batches not yet committed; rule 1 and the
//     destination listing make that harmless.
//  3. Destination-index entries (destination message → dedup key) are
//     written in the same transaction as the record that produced them,
//     so the index never names a message the destination lacks because of
//     us.
//  4. Flush commits everything added so far and returns once it is
//     durable. Close flushes. A run flushes on every exit path, Ctrl-C
//     included.
//  5. Open marks the checkpoint unclean (durably) and Close marks it clean
//     once everything is flushed. Every CommitInterval a commit records the
//     time, whether or not there are records: the heartbeat. The next run
//     thus knows if its predecessor died, and when it was last alive (to
//     within CommitInterval): see PreviousRun and plan.Options.CrashGrace.
//  6. A job's checkpoint is opened by one process at a time: bbolt takes an
//     exclusive flock on the file, and a second run fails at once with
//     ErrLocked instead of waiting.
//  7. A record is forgotten (Forget, for mirror deletes) only after the
//     destination message it names was deleted: a crash in between leaves
//     a record whose source message is still gone, and the next run
//     deletes its copy again, which finds nothing to do.
//  8. A destination folder's state (sink.FolderState, SetDstState) is
//     recorded only after the records of the copies written there are
//     durable (SetDstState flushes first), and only ever describes the
//     folder after those writes. A run believes the records of a
//     destination folder without listing it only when the folder's state
//     now shows it is the same folder with nothing removed since; every
//     other folder is listed and what it lost is copied again. So the
//     records never vouch alone for a message the destination lost.
//  9. With no dedup key to find a copy by (plan.DedupNone), a write intent
//     (Intend: source message, destination folder) is durable before the
//     write starts, and the record that follows a successful write removes
//     it in the same transaction. An intent still there at the next run
//     names a message whose copy may have arrived: it is matched by
//     content against the destination messages no record names.
//
// # Storage
//
// bbolt (go.etcd.io/bbolt): a single-file B+tree with copy-on-write pages
// and a double-buffered meta page, so a crash at any instant leaves the last
// committed transaction intact; lookups are O(log n) from a memory map, so
// a re-run checks 50,000 messages in milliseconds without loading the file,
// and the file holds millions of entries. An append-only journal would have
// to be replayed into memory on every start (about 2 s and 220 MiB for a
// million entries, library audit §6) and compacted; SQLite would add a C
// library or a large pure-Go port for no gain here.
package state
