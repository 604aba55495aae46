#pragma once

#include "../../fanout/shard.h"
#include "base/log.h"
