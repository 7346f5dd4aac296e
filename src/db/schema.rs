//! The tables, written once for both backends with portable types only.

diesel::table! {
    users (id) {
        id -> BigInt,
        username -> Text,
        email -> Text,
        password_hash -> Nullable<Text>,
        is_admin -> Bool,
        is_active -> Bool,
        time_zone -> Text,
        created_at -> Timestamp,
        last_seen_at -> Nullable<Timestamp>,
        last_active_at -> Nullable<Timestamp>,
        alert_mode -> Text,
        digest_hour -> Integer,
        last_alert_at -> Nullable<Timestamp>,
        avatar_at -> Nullable<Timestamp>,
        reply_epoch -> Integer,
    }
}

diesel::table! {
    alert_log (id) {
        id -> BigInt,
        user_id -> BigInt,
        at -> Timestamp,
        kind -> Text,
        message_id -> BigInt,
        decision -> Text,
    }
}

diesel::table! {
    reactions (message_id, user_id, emoji) {
        message_id -> BigInt,
        user_id -> BigInt,
        emoji -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    avatars (user_id) {
        user_id -> BigInt,
        image -> Binary,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    sessions (id) {
        id -> BigInt,
        token_hash -> Text,
        user_id -> BigInt,
        user_agent -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
    }
}

diesel::table! {
    user_tokens (id) {
        id -> BigInt,
        token_hash -> Text,
        user_id -> BigInt,
        purpose -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    login_failures (subject, address) {
        subject -> Text,
        address -> Text,
        failures -> Integer,
        first_failed_at -> Timestamp,
    }
}

diesel::table! {
    rooms (id) {
        id -> BigInt,
        slug -> Text,
        name -> Text,
        description -> Text,
        is_private -> Bool,
        archived_at -> Nullable<Timestamp>,
        cursor -> BigInt,
        last_message_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        kind -> Text,
        direct_key -> Nullable<Text>,
    }
}

diesel::table! {
    memberships (room_id, user_id) {
        room_id -> BigInt,
        user_id -> BigInt,
        last_read_id -> BigInt,
        joined_at -> Timestamp,
        alert_level -> Text,
        alerted_through_id -> BigInt,
    }
}

diesel::table! {
    messages (id) {
        id -> BigInt,
        room_id -> BigInt,
        author_id -> BigInt,
        body -> Text,
        client_id -> Nullable<Text>,
        revision -> BigInt,
        created_at -> Timestamp,
        edited_at -> Nullable<Timestamp>,
        deleted_at -> Nullable<Timestamp>,
        parent_id -> Nullable<BigInt>,
        reply_count -> Integer,
        last_reply_at -> Nullable<Timestamp>,
        pinned_at -> Nullable<Timestamp>,
        pinned_by -> Nullable<BigInt>,
    }
}

diesel::table! {
    saved_messages (user_id, message_id) {
        user_id -> BigInt,
        message_id -> BigInt,
        saved_at -> Timestamp,
    }
}

diesel::table! {
    attachments (id) {
        id -> BigInt,
        message_id -> BigInt,
        room_id -> BigInt,
        file_name -> Text,
        stored_name -> Text,
        content_type -> Text,
        size -> BigInt,
        sha256 -> Text,
        width -> Nullable<Integer>,
        height -> Nullable<Integer>,
        thumbnail_type -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    outbox (id) {
        id -> BigInt,
        kind -> Text,
        user_id -> Nullable<BigInt>,
        recipient -> Text,
        subject -> Text,
        text_body -> Text,
        html_body -> Text,
        summary -> Text,
        reply_to -> Nullable<Text>,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    imported (source, scope, key) {
        source -> Text,
        scope -> Text,
        key -> Text,
        local_id -> BigInt,
    }
}

diesel::joinable!(attachments -> messages (message_id));
diesel::joinable!(attachments -> rooms (room_id));
diesel::joinable!(alert_log -> users (user_id));
diesel::joinable!(avatars -> users (user_id));
diesel::joinable!(reactions -> messages (message_id));
diesel::joinable!(reactions -> users (user_id));
diesel::joinable!(saved_messages -> messages (message_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(user_tokens -> users (user_id));
diesel::joinable!(memberships -> rooms (room_id));
diesel::joinable!(memberships -> users (user_id));
diesel::joinable!(messages -> rooms (room_id));
diesel::joinable!(messages -> users (author_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    alert_log,
    avatars,
    reactions,
    saved_messages,
    sessions,
    user_tokens,
    login_failures,
    rooms,
    memberships,
    messages,
    attachments,
    outbox,
    imported
);
