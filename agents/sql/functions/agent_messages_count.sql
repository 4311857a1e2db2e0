CREATE OR REPLACE FUNCTION public.agent_messages_count() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE public.agent_sessions AS s
           SET message_count = s.message_count + 1,
               last_activity_at = greatest(s.last_activity_at, NEW.created_at)
         WHERE s.id = NEW.session_id;
        RETURN NEW;
    END IF;
    -- DELETE: the statement's deletions are already invisible here, so the latest remaining
    -- message is a plain max().
    UPDATE public.agent_sessions AS s
       SET message_count = s.message_count - 1,
           last_activity_at = greatest(s.started_at,
                                       (SELECT max(m.created_at) FROM public.agent_messages m
                                         WHERE m.session_id = OLD.session_id))
     WHERE s.id = OLD.session_id;
    RETURN OLD;
END
$$;
REVOKE ALL ON FUNCTION public.agent_messages_count() FROM PUBLIC;
