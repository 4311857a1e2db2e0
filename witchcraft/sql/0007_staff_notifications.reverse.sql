DROP TABLE IF EXISTS public.staff_notifications;
DROP TABLE IF EXISTS public.notification_states;
