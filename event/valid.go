package event

// maxDepth is encoding/json's nesting limit: 10000 open objects and arrays
// are accepted, one more is not.
const maxDepth = 10000

// validJSON reports whether data is exactly one JSON value with optional
// whitespace around it, accepting what json.Valid accepts (any byte from
// 0x20 up inside strings, UTF-8 or not) and nesting at most [maxDepth]
// deep. It does not recurse.
func validJSON(data []byte) bool {
	// The kind of each open container, a bit each: 1 for an object. The
	// first 512 levels need no allocation.
	var small [8]uint64
	open := small[:]
	depth := 0
	i := skipSpace(data, 0)

value: // a value starts at i
	if i >= len(data) {
		return false
	}
	switch c := data[i]; c {
	case '{', '[':
		if depth == maxDepth {
			return false
		}
		w, b := depth/64, uint(depth%64)
		if w == len(open) {
			open = append(open, 0)
		}
		if c == '{' {
			open[w] |= 1 << b
		} else {
			open[w] &^= 1 << b
		}
		depth++
		i = skipSpace(data, i+1)
		if i >= len(data) {
			return false
		}
		if c == '{' {
			if data[i] == '}' {
				depth--
				i++
				goto end
			}
			goto key
		}
		if data[i] == ']' {
			depth--
			i++
			goto end
		}
		goto value
	case '"':
		i = endOfValidString(data, i)
	case 't':
		i = endOfLiteral(data, i, "true")
	case 'f':
		i = endOfLiteral(data, i, "false")
	case 'n':
		i = endOfLiteral(data, i, "null")
	default:
		i = endOfNumber(data, i)
	}
	if i < 0 {
		return false
	}

end: // a value ended just before i
	i = skipSpace(data, i)
	if depth == 0 {
		return i == len(data)
	}
	if i >= len(data) {
		return false
	}
	switch inObject := open[(depth-1)/64]>>uint((depth-1)%64)&1 == 1; data[i] {
	case ',':
		i = skipSpace(data, i+1)
		if inObject {
			goto key
		}
		goto value
	case '}':
		if !inObject {
			return false
		}
		depth--
		i++
		goto end
	case ']':
		if inObject {
			return false
		}
		depth--
		i++
		goto end
	}
	return false

key: // a member name starts at i
	if i >= len(data) || data[i] != '"' {
		return false
	}
	if i = endOfValidString(data, i); i < 0 {
		return false
	}
	i = skipSpace(data, i)
	if i >= len(data) || data[i] != ':' {
		return false
	}
	i = skipSpace(data, i+1)
	goto value
}

// endOfValidString returns the index just past the string opening at
// data[i], or -1 if it is not a valid JSON string.
func endOfValidString(data []byte, i int) int {
	for j := i + 1; j < len(data); {
		switch c := data[j]; {
		case c == '"':
			return j + 1
		case c == '\\':
			if j+1 >= len(data) {
				return -1
			}
			switch data[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if j+6 > len(data) {
					return -1
				}
				for _, h := range data[j+2 : j+6] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return -1
					}
				}
				j += 6
			default:
				return -1
			}
		case c < 0x20:
			return -1
		default:
			j++
		}
	}
	return -1
}

// endOfLiteral returns the index just past lit at data[i], or -1.
func endOfLiteral(data []byte, i int, lit string) int {
	if len(data)-i < len(lit) || string(data[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// endOfNumber returns the index just past the number at data[i], or -1.
func endOfNumber(data []byte, i int) int {
	j := i
	if j < len(data) && data[j] == '-' {
		j++
	}
	switch {
	case j < len(data) && data[j] == '0':
		j++
	case j < len(data) && '1' <= data[j] && data[j] <= '9':
		j = endOfDigits(data, j+1)
	default:
		return -1
	}
	if j < len(data) && data[j] == '.' {
		j++
		if j >= len(data) || !isDigit(data[j]) {
			return -1
		}
		j = endOfDigits(data, j+1)
	}
	if j < len(data) && (data[j] == 'e' || data[j] == 'E') {
		j++
		if j < len(data) && (data[j] == '+' || data[j] == '-') {
			j++
		}
		if j >= len(data) || !isDigit(data[j]) {
			return -1
		}
		j = endOfDigits(data, j+1)
	}
	return j
}

func endOfDigits(data []byte, j int) int {
	for j < len(data) && isDigit(data[j]) {
		j++
	}
	return j
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
