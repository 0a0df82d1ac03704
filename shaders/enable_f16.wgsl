enable f16;
// enable_f16.wgsl: the directive first in every kernel that uses f16 types (WGSL
// wants it before any declaration).
