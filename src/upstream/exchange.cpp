#include "lagoon/upstream/exchange.hpp"

#include <stdexcept>

#include <boost/throw_exception.hpp>

namespace lagoon::upstream {

void throw_exception_from_error(const Failure& f, const boost::source_location& where) {
  boost::throw_exception(std::logic_error("upstream result read as a value on failure: " + f.what), where);
}

}  // namespace lagoon::upstream
