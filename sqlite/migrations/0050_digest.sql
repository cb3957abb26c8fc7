-- 0050: reading a practice's state without resource bodies (DigestChanges).
--
-- A digest reads every resource's latest state ordered by compartment
-- patient. The compartment rows come through journal_patient; the rows in
-- no compartment (practitioners, locations, slots, ...) had no index but
-- the practice's whole journal. This partial index covers everything
-- DigestChanges reads of them, so neither the table nor the resource
-- bodies are touched; it costs an index entry only for rows with no
-- patient.
CREATE INDEX journal_nopatient ON journal (practice, seq, type, id, version, op, commit_us, member, hash)
	WHERE patient = '';
