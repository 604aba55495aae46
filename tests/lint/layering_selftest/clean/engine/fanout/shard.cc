#include "fanout/shard.h"

#include "base/log.h"
#include "wire/frame.h"

// Not an include: #include "ingest/consumer.h"
