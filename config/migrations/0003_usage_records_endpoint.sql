-- Which endpoint a usage row is for (chat, models, key; embeddings, images, audio and responses as they
-- come). Rows written before this column say chat: the only metered endpoints then were chat, the model
-- list and the key's own record, and the last two were never more than a sliver of the rows.
ALTER TABLE usage_records ADD COLUMN IF NOT EXISTS endpoint text NOT NULL DEFAULT 'chat';
