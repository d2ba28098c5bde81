package counter

import (
	"fmt"

	"github.com/abacus-dev/abacus"
)

// indexed prefixes a batch item's error with its position, keeping its code.
func indexed(field string, i int, err error) error {
	return &abacus.Error{Code: abacus.ErrorCode(err), Msg: fmt.Sprintf("%s[%d]: %s", field, i, abacus.ErrorMessage(err)), Err: err}
}
