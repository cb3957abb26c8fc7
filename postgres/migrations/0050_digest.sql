-- 0050: reading a practice's state without resource bodies (DigestChanges).
--
-- A digest reads every resource's latest state ordered by compartment
-- patient. The compartment rows come through journal_patient; the rows in
-- no compartment (practitioners, locations, slots, ...) had no index but
-- the practice's whole journal. This partial index carries everything
-- DigestChanges reads of them (an index-only scan once the visibility map
-- is set); it costs an index entry only for rows with no patient.
CREATE INDEX journal_nopatient ON journal (practice, seq)
	INCLUDE (type, id, version, op, commit_us, member, hash)
	WHERE patient = '';
