#include "fanout/shard.h"

#include "base/log.h"
#include "ingest/detail/consumer.h"
#include "wire/frame.h"
