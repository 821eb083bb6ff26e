package synapse_test

import (
	"strconv"
	"strings"
	"testing"

	synapse "github.com/synapse-sdk/synapse-go"
)

func FuzzEnvGetters(f *testing.F) {
	for _, s := range []string{
		"", " ", "0", "1", "-1", "+1", " 42 ", "\t7\n", "4.0", "1e3", "0x10", "1_000",
		"9223372036854775807", "9223372036854775808", "-9223372036854775809",
		"NaN", "inf", "-Inf", "true", "FALSE", " yes ", "On", "off ", "maybe",
		"a,b,c", " a , b ,, c ,", ",,,", " , ", "x,\u00a0,y", "\u3000a\u3000",
		"\xff\xfe", "日本語,テキスト", strings.Repeat("long,", 30),
	} {
		f.Add("KEY", s)
	}
	f.Add("", "abc")
	f.Add("weird key = \"x\"", "not a number")

	f.Fuzz(func(t *testing.T, key, s string) {
		env := synapse.NewEnv(map[string]any{key: s})

		if got := env.GetString(key, "default"); got != s {
			t.Errorf("GetString = %q, want the value %q", got, s)
		}

		const intDef = -424242
		n, err := env.GetInt(key, intDef)
		want, atoiErr := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			checkFuzzErr(t, "GetInt", err, key)
			if n != intDef {
				t.Errorf("GetInt(%q) = %d with error %v, want the default %d", s, n, err, intDef)
			}
		}
		if (err == nil) != (atoiErr == nil) {
			t.Errorf("GetInt(%q) error = %v, but strconv.Atoi error = %v", s, err, atoiErr)
		} else if err == nil && n != want {
			t.Errorf("GetInt(%q) = %d, want %d", s, n, want)
		}

		const floatDef = -4242.5
		x, err := env.GetFloat(key, floatDef)
		wantF, parseErr := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			checkFuzzErr(t, "GetFloat", err, key)
			if x != floatDef {
				t.Errorf("GetFloat(%q) = %v with error %v, want the default %v", s, x, err, floatDef)
			}
		}
		if (err == nil) != (parseErr == nil) {
			t.Errorf("GetFloat(%q) error = %v, but strconv.ParseFloat error = %v", s, err, parseErr)
		} else if err == nil && x != wantF && !(x != x && wantF != wantF) { // NaN != NaN
			t.Errorf("GetFloat(%q) = %v, want %v", s, x, wantF)
		}

		// Try both defaults: on error the result must be the default given.
		for _, def := range []bool{false, true} {
			b, err := env.GetBool(key, def)
			word := strings.ToLower(strings.TrimSpace(s))
			isTrue := word == "true" || word == "1" || word == "yes" || word == "on"
			isFalse := word == "false" || word == "0" || word == "no" || word == "off"
			switch {
			case err != nil:
				checkFuzzErr(t, "GetBool", err, key)
				if b != def {
					t.Errorf("GetBool(%q, %v) = %v with error %v, want the default", s, def, b, err)
				}
				if isTrue || isFalse {
					t.Errorf("GetBool(%q) error = %v for an accepted word", s, err)
				}
			case isTrue && !b, isFalse && b:
				t.Errorf("GetBool(%q) = %v", s, b)
			case !isTrue && !isFalse:
				t.Errorf("GetBool(%q) = %v, nil; want an error", s, b)
			}
		}

		list, err := env.GetList(key, []string{"default"})
		if err != nil {
			t.Fatalf("GetList(%q) error = %v; a string always converts", s, err)
		}
		if list == nil {
			t.Errorf("GetList(%q) = nil, want a non-nil (possibly empty) list", s)
		}
		for i, item := range list {
			if item == "" {
				t.Errorf("GetList(%q) item %d is empty", s, i)
			}
			if item != strings.TrimSpace(item) {
				t.Errorf("GetList(%q) item %d = %q is not trimmed", s, i, item)
			}
			if strings.Contains(item, ",") {
				t.Errorf("GetList(%q) item %d = %q contains a comma", s, i, item)
			}
			if !strings.Contains(s, item) {
				t.Errorf("GetList(%q) item %d = %q is not part of the value", s, i, item)
			}
		}
		if strings.TrimSpace(strings.ReplaceAll(s, ",", "")) != "" && len(list) == 0 {
			t.Errorf("GetList(%q) = [], but the value has non-blank content", s)
		}
	})
}

func checkFuzzErr(t *testing.T, getter string, err error, key string) {
	t.Helper()
	if !strings.Contains(err.Error(), key) {
		t.Errorf("%s error %q does not contain the key %q", getter, err, key)
	}
}
