#pragma once

#include "base/log.h"
#include "herald/v1/announcement.pb.h"
