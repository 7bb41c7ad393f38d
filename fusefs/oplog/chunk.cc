#include "fusefs/oplog/chunk.h"

#include "fusefs/store/codec.h"

namespace roam::oplog {

Result<Chunk> Chunk::parse(uint64_t first_seq, std::string_view value) {
  Chunk c;
  c.first_ = first_seq;
  c.value_ = value;
  if (!value.empty() && static_cast<uint8_t>(value[0]) == kRecordV1) {
    ROAM_ASSIGN(OpRecord r, decode_record_v1(first_seq, value));
    c.v1_ = true;
    c.entries_.push_back({value, {r.ts_ns, std::move(r.caller)}});
    return c;
  }
  codec::Reader in(value);
  if (in.byte() != kChunkV2) {
    return Status::corrupt("op log chunk " + std::to_string(first_seq) + ": unknown version");
  }
  while (in.ok() && !in.at_end()) {
    const uint64_t seq = first_seq + c.entries_.size();
    const std::string_view bytes = in.bytes();
    if (!in.ok()) break;
    const RecordContext* prev = c.entries_.empty() ? nullptr : &c.entries_.back().context;
    ROAM_ASSIGN(RecordContext context, decode_context(seq, bytes, prev));
    c.entries_.push_back({bytes, std::move(context)});
  }
  if (!in.ok() || c.entries_.empty()) {
    return Status::corrupt("op log chunk " + std::to_string(first_seq) + ": truncated");
  }
  return c;
}

std::string Chunk::encode(const std::vector<OpRecord>& records) {
  std::string value(1, static_cast<char>(kChunkV2));
  std::string rec;
  RecordContext prev;
  for (size_t i = 0; i < records.size(); ++i) {
    rec.clear();
    encode_record(rec, records[i], i == 0 ? nullptr : &prev);
    codec::put_bytes(value, rec);
    prev = {records[i].ts_ns, records[i].caller};
  }
  return value;
}

Result<OpRecord> Chunk::record(uint64_t seq) const {
  const size_t i = seq - first_;
  if (v1_) return decode_record_v1(seq, entries_[i].bytes);
  return decode_record(seq, entries_[i].bytes, i == 0 ? nullptr : &entries_[i - 1].context);
}

std::optional<std::string> Chunk::appended(const OpRecord& r) const {
  if (v1_) return std::nullopt;
  std::string rec;
  encode_record(rec, r, &entries_.back().context);
  std::string value(value_);
  codec::put_bytes(value, rec);
  if (value.size() > kChunkBytes) return std::nullopt;
  return value;
}

}  // namespace roam::oplog
