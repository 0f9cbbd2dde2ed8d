package event

// maxDepth is encoding/json's nesting limit: 10000 open objects and arrays
// are accepted, one more is not.
const maxDepth = 10000

// validJSON reports whether data is exactly one JSON value with optional
// whitespace around it, accepting what json.Valid accepts (any byte from
// 0x20 up inside strings, UTF-8 or not) and nesting at most [maxDepth]
// deep. ascii reports (when ok) that every string in it is plain (see
// scanString), so that data holds no byte above ASCII and is valid UTF-8;
// false says nothing.
func validJSON(data []byte) (ok, ascii bool) {
	i, ascii := endOfValidValue(data, skipSpace(data, 0), 0)
	return i >= 0 && skipSpace(data, i) == len(data), ascii
}

// endOfValidValue returns the index just past the JSON value starting at
// data[i], or -1 if there is none there. outer containers are open around
// it: they count towards [maxDepth]. ascii reports that every string of
// the value is plain (see scanString): outside strings valid JSON is
// ASCII, so the value is then ASCII throughout. It does not recurse.
func endOfValidValue(data []byte, i, outer int) (end int, ascii bool) {
	// The kind of each open container, a bit each: 1 for an object. The
	// first 512 levels need no allocation.
	var small [8]uint64
	open := small[:]
	depth := 0 // containers opened here
	ascii = true
	plain := true

value: // a value starts at i
	if i >= len(data) {
		return -1, false
	}
	switch c := data[i]; c {
	case '{', '[':
		if outer+depth >= maxDepth {
			return -1, false
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
			return -1, false
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
		i, plain = scanString(data, i)
		ascii = ascii && plain
	default:
		i = endOfScalar(data, i)
	}
	if i < 0 {
		return -1, false
	}

end: // a value ended just before i
	if depth == 0 {
		return i, ascii
	}
	i = skipSpace(data, i)
	if i >= len(data) {
		return -1, false
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
			return -1, false
		}
		depth--
		i++
		goto end
	case ']':
		if inObject {
			return -1, false
		}
		depth--
		i++
		goto end
	}
	return -1, false

key: // a member name starts at i
	if i >= len(data) || data[i] != '"' {
		return -1, false
	}
	if i, plain = scanString(data, i); i < 0 {
		return -1, false
	}
	ascii = ascii && plain
	i = skipSpace(data, i)
	if i >= len(data) || data[i] != ':' {
		return -1, false
	}
	i = skipSpace(data, i+1)
	goto value
}

// endOfScalar returns the index just past the literal (true, false, null)
// or number at data[i], or -1.
func endOfScalar(data []byte, i int) int {
	switch data[i] {
	case 't':
		return endOfLiteral(data, i, "true")
	case 'f':
		return endOfLiteral(data, i, "false")
	case 'n':
		return endOfLiteral(data, i, "null")
	default:
		return endOfNumber(data, i)
	}
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
